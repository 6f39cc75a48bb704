-- The entity gateway of seed 000 (contract §7.4, §7.5): restaurants, their tables and
-- their reservations as a floor-plan or host-stand screen lists, reads and watches
-- them on `/ws/:entity/:section`. Every change goes through REST (or `table:complete`)
-- and is announced as `{entity}.snapshot` to the connections of the item's section.
--
-- A section is a slice of the floor (`main-hall`, `patio`) or of the restaurant list
-- (a district): 1–64 characters of `[A-Za-z0-9_.-]`, the same rule as the gateway's
-- path segment, so every stored section can be connected to. `all` is the gateway's
-- word for "every section", never stored.

alter table restaurants
    add column section text not null default 'main'
        constraint restaurants_section_check check (section ~ '^[A-Za-z0-9_.-]{1,64}$' and section <> 'all'),
    add column address text
        constraint restaurants_address_check check (char_length(address) between 1 and 500),
    add column cuisine text
        constraint restaurants_cuisine_check check (char_length(cuisine) between 1 and 100),
    add column updated_at timestamptz not null default now();

-- Lists are ordered by name, `id` breaking ties; the section filter comes first.
create index restaurants_section_name_idx on restaurants (section, name, id);

-- The tables of a restaurant's floor. Ids are the backend's own (`table-17`), unique
-- within a restaurant only: two restaurants may both have `table-1`.
create table restaurant_tables (
    restaurant_id  uuid not null references restaurants (id),
    id             text not null
        constraint restaurant_tables_id_check check (id ~ '^[A-Za-z0-9_.:-]{1,64}$'),
    section        text not null
        constraint restaurant_tables_section_check check (section ~ '^[A-Za-z0-9_.-]{1,64}$' and section <> 'all'),
    name           text not null
        constraint restaurant_tables_name_check check (char_length(name) between 1 and 100),
    seats          int not null
        constraint restaurant_tables_seats_check check (seats between 1 and 1000),
    status         text not null default 'available'
        constraint restaurant_tables_status_check check (status in ('available', 'occupied', 'reserved', 'cleaning')),
    created_at     timestamptz not null default now(),
    updated_at     timestamptz not null default now(),
    constraint restaurant_tables_pkey primary key (restaurant_id, id)
);

-- A section's tables by name (the gateway's list), per restaurant.
create index restaurant_tables_section_name_idx on restaurant_tables (restaurant_id, section, name, id);
-- `table:complete` finds a table by its name when no id matches.
create index restaurant_tables_name_idx on restaurant_tables (restaurant_id, name);

create table reservations (
    id             uuid primary key,
    restaurant_id  uuid not null references restaurants (id),
    section        text not null
        constraint reservations_section_check check (section ~ '^[A-Za-z0-9_.-]{1,64}$' and section <> 'all'),
    -- The table it is for, if one is assigned. Deleting a table first clears it here
    -- (in the same transaction, with a snapshot of each reservation it touched); the
    -- key catches a reservation written for a table being deleted at that moment.
    table_id       text,
    guest_name     text not null
        constraint reservations_guest_name_check check (char_length(guest_name) between 1 and 200),
    party_size     int not null
        constraint reservations_party_size_check check (party_size between 1 and 1000),
    starts_at      timestamptz not null,
    status         text not null default 'booked'
        constraint reservations_status_check check (status in ('booked', 'seated', 'completed', 'cancelled', 'no_show')),
    notes          text
        constraint reservations_notes_check check (char_length(notes) between 1 and 2000),
    created_at     timestamptz not null default now(),
    updated_at     timestamptz not null default now(),
    constraint reservations_table_fkey foreign key (restaurant_id, table_id)
        references restaurant_tables (restaurant_id, id)
);

-- A section's reservations by time (the gateway's list), per restaurant.
create index reservations_section_time_idx on reservations (restaurant_id, section, starts_at, id);
-- Every section of a restaurant by time (section `all`).
create index reservations_time_idx on reservations (restaurant_id, starts_at, id);
-- The reservations a deleted table leaves.
create index reservations_table_idx on reservations (restaurant_id, table_id) where table_id is not null;
