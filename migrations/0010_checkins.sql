-- Event check-ins (contract §7.5, §7.6; seed 002's dashboard): a backend posts each
-- check-in attempt of a session (`POST /api/sessions/:sessionId/checkins`); the
-- session's `/ws/dashboard/:sessionID` connections receive it, and
-- `GET /api/sessions/:sessionId/checkins` lists a session's newest first.
--
-- Sessions live in the backend that posts: `session_id` is its UUID, not a reference
-- to a table of ours. `user_name` and `profile_url` are copied as they were at check-in
-- time (the dashboard shows who checked in then, not who the user is now).
create table checkins (
    id            uuid primary key,
    session_id    uuid not null,
    user_id       bigint not null,
    user_name     text not null
        constraint checkins_user_name_check check (char_length(user_name) between 1 and 200),
    profile_url   text
        constraint checkins_profile_url_check check (char_length(profile_url) between 1 and 2000),
    -- Whether the check-in went through; `message` says why not (or greets).
    success       boolean not null,
    message       text not null
        constraint checkins_message_check check (char_length(message) between 1 and 2000),
    checkin_time  timestamptz not null default now()
);

-- "Newest first per session": the list walks this index backwards from the session's
-- newest row and stops at `limit`; `id` breaks ties between check-ins of one instant.
create index checkins_session_time_idx on checkins (session_id, checkin_time desc, id desc);
