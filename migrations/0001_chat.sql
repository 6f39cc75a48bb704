-- Chat: conversations, their members, and messages.
--
-- Users live in another service (the User Service of seed 004): user ids are plain
-- integers taken from the JWT `sub`, so there is no users table and no foreign key to one.

-- A conversation is `private` (two people) or `group`. Deleting one removes its
-- members and messages with it (the REST delete route is the only way to do that).
create table conversations (
    id          uuid primary key,
    type        text not null constraint conversations_type_check check (type in ('private', 'group')),
    name        text,
    owner_id    bigint not null,
    created_at  timestamptz not null default now()
);

-- Membership and the read cursor. `last_read_seq` is the `seq` of the newest message the
-- member has read; everything at or below it counts as read. A cursor only moves
-- forward (`greatest(...)` in every update), and a member added later starts at the
-- conversation's newest message, so history from before the join is not "unread".
create table conversation_members (
    conversation_id uuid not null references conversations (id) on delete cascade,
    user_id         bigint not null,
    role            text not null constraint conversation_members_role_check check (role in ('owner', 'member')),
    last_read_seq   bigint not null default 0,
    joined_at       timestamptz not null default now(),
    primary key (conversation_id, user_id)
);
-- "Which conversations is this user in" drives the unread count on every connect.
create index conversation_members_user_idx on conversation_members (user_id);

-- Messages. `id` is the public `_id`; `seq` is a global, strictly increasing order used
-- for paging cursors and read cursors, so two messages in the same millisecond still
-- have a defined order. Deletes are soft (`deleted_at`): a deleted message leaves
-- history and unread counts but its row stays for audit.
create table messages (
    id              uuid primary key,
    seq             bigint generated always as identity,
    conversation_id uuid not null references conversations (id) on delete cascade,
    sender_id       bigint not null,
    content         text not null,
    attachments     text[] not null default '{}',
    client_id       text,
    created_at      timestamptz not null default now(),
    updated_at      timestamptz,
    deleted_at      timestamptz,
    constraint messages_seq_key unique (seq)
);
-- History pages and unread counts both walk one conversation by `seq`.
create index messages_conversation_seq_idx on messages (conversation_id, seq);
-- `clientId` makes `message:send` idempotent per sender.
create unique index messages_sender_client_id_key on messages (sender_id, client_id) where client_id is not null;
