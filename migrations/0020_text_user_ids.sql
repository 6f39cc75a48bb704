-- User ids become text (contract §2): a token's `sub` is a JSON integer (seeds 001,
-- 004) or a string such as a UUID or `user_789` (seeds 002, 003). Existing integer ids
-- keep their decimal spelling, so `42` stays the same user and is still rendered as the
-- number 42. The indexes and keys on these columns are rebuilt by the type change.
-- Numbered 0020 to leave room below for migrations written in parallel with this one.
alter table conversations alter column owner_id type text using owner_id::text;
alter table conversation_members alter column user_id type text using user_id::text;
alter table messages alter column sender_id type text using sender_id::text;
alter table notifications alter column user_id type text using user_id::text;
alter table notification_receipts alter column user_id type text using user_id::text;
alter table orders alter column customer_id type text using customer_id::text;
alter table channel_grants alter column user_id type text using user_id::text;
alter table channel_grants alter column granted_by type text using granted_by::text;
alter table checkins alter column user_id type text using user_id::text;
