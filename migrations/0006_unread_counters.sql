-- Unread counts kept per member instead of counted on every change.
--
-- Counting `seq > last_read_seq` for every member of a room on every message grows with
-- the unread backlog (a room of 20 with 10k unread messages counted 190k rows per send).
-- Now sends, deletes and member additions of a conversation first lock its member rows
-- (in user id order), so they run one at a time per conversation, and:
--   * a new message adds 1 to every other member's counter and sets the sender's to 0
--     (its cursor moves to its own message and nothing newer can be in flight);
--   * a soft delete takes 1 from members whose cursor is before it;
--   * a read locks the member row, then recounts what is still past the new cursor;
--   * a member added later starts at 0 (its cursor is at the newest message).
alter table conversation_members add column unread_count integer not null default 0;

update conversation_members cm
set unread_count = (
    select count(*) from messages m
    where m.conversation_id = cm.conversation_id and m.seq > cm.last_read_seq
      and m.sender_id <> cm.user_id and m.deleted_at is null
);
