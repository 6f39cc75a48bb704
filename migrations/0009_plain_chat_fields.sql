-- Fields the plain WebSocket dialects render (contract §7.2, §7.3, §7.5).

-- A chat message's kind as seed 002/003 clients send it (`type`: text, image, …) and
-- the sender's display name (the token's `name` claim) at the time it was sent.
-- Messages stored before this migration are text with no name.
alter table messages
    add column message_type text not null default 'text'
        constraint messages_message_type_check check (char_length(message_type) between 1 and 32),
    add column sender_name text
        constraint messages_sender_name_check check (char_length(sender_name) <= 200);

-- `POST /api/notifications` `link` (seed 002's `link`, seed 003's `action_url`) and
-- `priority`.
alter table notifications
    add column link text
        constraint notifications_link_check check (char_length(link) <= 2000),
    add column priority text not null default 'normal'
        constraint notifications_priority_check check (priority in ('low', 'normal', 'high'));
