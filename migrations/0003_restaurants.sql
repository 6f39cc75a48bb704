-- Restaurant OS (seed 001): restaurants, orders and their items.

create table restaurants (
    id          uuid primary key,
    name        text not null,
    created_at  timestamptz not null default now()
);

-- The declaration order is the order of the kitchen flow: a move is valid when it goes
-- to a later status (`new < pending < … < completed`), or to `cancelled` from any
-- status that is not final. Enum comparison in SQL follows this order, so the rule is
-- enforced inside the UPDATE itself and two tablets cannot both win a race.
create type order_status as enum ('new', 'pending', 'confirmed', 'preparing', 'ready', 'completed', 'cancelled');

create table orders (
    id              uuid primary key,
    restaurant_id   uuid not null references restaurants (id),
    order_number    text not null,
    type            text not null constraint orders_type_check check (type in ('dine_in', 'takeout', 'delivery', 'online')),
    table_number    text,
    status          order_status not null default 'new',
    total           numeric(12, 2) not null constraint orders_total_check check (total >= 0),
    created_at      timestamptz not null default now(),
    updated_at      timestamptz not null default now(),
    -- `DELETE /api/orders/:id` takes an order off the board but keeps it for audit.
    deleted_at      timestamptz,
    deleted_reason  text
);

-- The board: active orders of a restaurant, oldest first (`orders:sync`).
create index orders_active_idx on orders (restaurant_id, created_at)
    where deleted_at is null and status not in ('completed', 'cancelled');
-- A table's active orders (`table:complete`, `table:ready`).
create index orders_table_active_idx on orders (restaurant_id, table_number)
    where deleted_at is null and status not in ('completed', 'cancelled') and table_number is not null;

create table order_items (
    id          uuid primary key,
    order_id    uuid not null references orders (id) on delete cascade,
    position    int not null,
    name        text not null,
    quantity    int not null constraint order_items_quantity_check check (quantity > 0),
    station     text not null constraint order_items_station_check check (station in ('kitchen', 'expo', 'bar', 'pos')),
    notes       text
);
create index order_items_order_idx on order_items (order_id, position);
