-- Search on the entity gateway (contract §7.4, PROTOCOL §10) that stays fast at 100,000
-- rows per restaurant. `search` matches any part of a name, case-insensitively, with
-- `%`, `_` and `\` taken literally: the store asks `name ilike '%…%'` (escaped). A
-- pattern that starts with `%` cannot use a btree index, so a search read every row of
-- the restaurant: 35–50 ms at 100,000 reservations on the test machine.
--
-- pg_trgm's GIN operator class answers `ilike '%…%'` from the trigrams of the search
-- (`okafor` → `oka`, `kaf`, …; case-folded, and the escapes understood), the planner
-- picking it when the search is selective: 1.6 ms to count and 5.6 ms to sort the
-- 2,522 reservations of an `okafor` among 100,000. A search of one or two characters
-- has no trigram: the planner walks the ordered btree instead, which fills a first
-- page at once (counting its matches still reads the restaurant's rows).
--
-- pg_trgm ships with PostgreSQL's contrib modules: in Debian's `postgresql-NN` package
-- itself (the one scripts/run installs, and the binaries the embedded database runs),
-- elsewhere often a separate `postgresql-contrib`. It is a trusted extension since
-- PostgreSQL 13, so the database's owner may create it without being a superuser.
create extension if not exists pg_trgm;

create index reservations_guest_name_trgm_idx on reservations using gin (guest_name gin_trgm_ops);
create index restaurant_tables_name_trgm_idx on restaurant_tables using gin (name gin_trgm_ops);
create index restaurants_name_trgm_idx on restaurants using gin (name gin_trgm_ops);

-- A restaurant's tables by name for the gateway's list of every section (`order by
-- name, restaurant_id, id`). Without `id` the planner sorted all of them for a deep page
-- (90 ms at 100,000 tables, its sort spilling to disk). Also what `table:complete`
-- looks a table up by name with.
create index restaurant_tables_name_id_idx on restaurant_tables (restaurant_id, name, id);
drop index restaurant_tables_name_idx;
