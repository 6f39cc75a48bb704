-- `clientId` idempotency is scoped to one conversation: a client that reuses a key in
-- another conversation sends a new message there instead of getting back a message
-- from the first conversation.
drop index messages_sender_client_id_key;
create unique index messages_conversation_sender_client_id_key
    on messages (conversation_id, sender_id, client_id) where client_id is not null;
