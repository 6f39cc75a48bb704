-- Plain WebSocket channels (contract §7.2, §7.5): who may subscribe to what beyond the
-- rules that follow from the token alone.

-- The customer an order belongs to (`POST /api/restaurants/:id/orders` `customer_id`):
-- that user may subscribe to `order:<id>`. Orders created before this column, or for
-- walk-in guests, have none.
alter table orders add column customer_id bigint;

-- `POST /api/channels/grants`: a backend lets one user subscribe to one non-public
-- channel (an order shared with a courier, a tenant channel for a support agent).
-- The channel is stored as the client spells it, so the check on subscribe is one
-- primary-key lookup; `DELETE` removes the row and unsubscribes the user's connections.
create table channel_grants (
    channel     text not null constraint channel_grants_channel_check check (char_length(channel) between 3 and 200),
    user_id     bigint not null,
    -- The service or admin principal that granted it (audit).
    granted_by  bigint not null,
    created_at  timestamptz not null default now(),
    primary key (channel, user_id)
);
