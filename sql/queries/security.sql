-- Named queries of identity and teams (store/identity.py, store/teams.py).
-- Same format as events.sql: `-- name --`, one line of description, the statement.

-- identity_set --
-- Act as a run-time role and a user's signed token (verified by vjm.current_user_id()) for the rest of this transaction only (is_local: reverts at COMMIT/ROLLBACK).
SELECT set_config('role', $1, true), set_config('request.jwt', $2, true);

-- identity_set_session_role --
-- A service pool's session role (not an identity): set once when the pool opens a connection.
SELECT set_config('role', $1, false);

-- identity_get --
-- The role and user the database sees for this transaction.
SELECT vjm.caller_role() AS role, vjm.caller_kind() AS kind, vjm.current_user_id() AS user_id;

-- team_create --
-- A new team owned by $2 (a user may only name themselves; RLS checks it).
INSERT INTO vjm.teams (name, owner_id) VALUES ($1, $2)
RETURNING team_id, name, owner_id, created_at;

-- team_member_add --
-- Add a user to a team or change their role in it (only the team's owner or an admin may).
INSERT INTO vjm.team_members AS m (team_id, user_id, role) VALUES ($1, $2, $3)
ON CONFLICT (team_id, user_id) DO UPDATE SET role = excluded.role
RETURNING team_id, user_id, role, added_at;

-- team_member_remove --
-- Remove a user from a team (the team's owner, an admin, or the user leaving); returns the removed row.
DELETE FROM vjm.team_members WHERE team_id = $1 AND user_id = $2
RETURNING team_id, user_id, role, added_at;

-- team_get_visible --
-- The teams the caller may see (owned or member), oldest first.
SELECT team_id, name, owner_id, created_at FROM vjm.teams ORDER BY created_at, team_id LIMIT $1;

-- team_member_get_many --
-- Members of one team that the caller may see.
SELECT team_id, user_id, role, added_at FROM vjm.team_members WHERE team_id = $1 ORDER BY added_at, user_id LIMIT $2;
