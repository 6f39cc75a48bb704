-- Notifications (seed 004, second half).
--
-- A personal notification has `user_id` set and carries its own read flag; deleting it
-- removes the row. A broadcast notification (`user_id` null) is stored once and shown
-- to every user, including users who connect for the first time later; each user's
-- read/delete of it is a row in `notification_receipts`, so one user's actions never
-- touch another's view.
create table notifications (
    id          uuid primary key,
    seq         bigint generated always as identity,
    user_id     bigint,
    type        text not null constraint notifications_type_check check (type in ('message', 'group_invite', 'system')),
    title       text not null,
    content     text not null,
    related_id  text,
    is_read     boolean not null default false,
    created_at  timestamptz not null default now(),
    constraint notifications_seq_key unique (seq)
);

-- Listing one user's notifications newest first, and paging with a `before` cursor,
-- walks this index backwards: the cost of a page does not grow with the user's total.
create index notifications_user_seq_idx on notifications (user_id, seq) where user_id is not null;
-- Unread counts only touch unread rows.
create index notifications_user_unread_idx on notifications (user_id) where user_id is not null and not is_read;
-- Broadcasts, newest first.
create index notifications_broadcast_seq_idx on notifications (seq) where user_id is null;

create table notification_receipts (
    notification_id uuid not null references notifications (id) on delete cascade,
    user_id         bigint not null,
    read_at         timestamptz,
    deleted_at      timestamptz,
    primary key (user_id, notification_id)
);
