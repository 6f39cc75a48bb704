-- Order events for batch-mode sockets on other nodes whose JSON exceeds NOTIFY's
-- 8000-byte payload limit: the NOTIFY carries the row id instead. Rows are read within
-- moments and pruned after ten minutes by the node that writes the next one.
create table cluster_bus_payloads (
    id bigserial primary key,
    payload jsonb not null,
    created_at timestamptz not null default now()
);

create index cluster_bus_payloads_created_at on cluster_bus_payloads (created_at);
