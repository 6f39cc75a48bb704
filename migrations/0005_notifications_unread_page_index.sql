-- Unread-only pages walk a user's unread notifications newest first: index exactly
-- that, so a mostly-read inbox of 100k rows does not have to be filtered row by row.
drop index notifications_user_unread_idx;
create index notifications_user_unread_seq_idx on notifications (user_id, seq) where user_id is not null and not is_read;
