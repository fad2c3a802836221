-- Worker heartbeats for meshhook-health (docs/MESHHOOK.md, README "Worker heartbeats").
-- Lives outside `public` so that Supabase's Data API does not expose it.
create schema if not exists monitoring;
create table if not exists monitoring.worker_heartbeats (
    worker_id    text        primary key,
    kind         text        not null default 'worker',
    version      text,
    started_at   timestamptz not null default now(),
    last_seen_at timestamptz not null default now()
);
