-- Named queries of identity and teams (store/identity.py, store/teams.py).
-- Same format as events.sql: `-- name --`, one line of description, the statement.

-- identity_set --
-- Act as a run-time role and a user's signed token (verified by vjm.current_user_id()) for the rest of this transaction only (is_local: reverts at COMMIT/ROLLBACK).
SELECT set_config('role', :role, true), set_config('request.jwt', :token, true);

-- identity_set_session_role --
-- A service pool's session role (not an identity): set once when the pool opens a connection.
SELECT set_config('role', :role, false);

-- identity_may_admin --
-- Whether this login may act as vjm_admin (a superuser, or a member): what connect() picks its service role by.
SELECT rolsuper OR pg_has_role(current_user, 'vjm_admin', 'MEMBER') FROM pg_roles WHERE rolname = current_user;

-- identity_key_matches --
-- Whether the database's identity key is this secret (vjm.jwt_secret_matches; admins).
SELECT vjm.jwt_secret_matches(:secret);

-- identity_key_set --
-- Make this secret and audience the database's identity key (vjm.set_jwt_secret; admins).
SELECT vjm.set_jwt_secret(:secret, :audience);

-- identity_token_issue --
-- A short-lived signed token naming an end user (vjm.issue_token; admins): what DatabaseTokens mints.
SELECT vjm.issue_token(:user_id, :ttl_seconds);

-- identity_get --
-- The role and user the database sees for this transaction.
SELECT vjm.caller_role() AS role, vjm.caller_kind() AS kind, vjm.current_user_id() AS user_id;

-- team_create --
-- A new team, its id issued by the database, owned and joined by :owner_id (vjm.create_team: a user may only name themselves).
SELECT team_id, name, owner_id, created_at FROM vjm.create_team(:name, :owner_id);

-- team_member_add --
-- Add a user to a team or change their role in it (vjm.add_team_member: only the team's owner or an admin may).
SELECT team_id, user_id, role, added_at FROM vjm.add_team_member(:team_id, :user_id, :role);

-- team_member_remove --
-- Remove a user from a team (the team's owner, an admin, or the user leaving); the removed row, or no row.
SELECT team_id, user_id, role, added_at FROM vjm.remove_team_member(:team_id, :user_id) WHERE team_id IS NOT NULL;

-- team_delete --
-- Delete a team (vjm.delete_team: its owner or an admin; refused while it has jobs that are not deleted).
SELECT team_id, name, owner_id, created_at FROM vjm.delete_team(:team_id);

-- team_get_visible --
-- The teams the caller may see (owned or member), oldest first.
SELECT team_id, name, owner_id, created_at FROM vjm.teams WHERE deleted_at IS NULL
 ORDER BY created_at, team_id LIMIT :limit;

-- team_id_get_mine --
-- The calling end user's teams (vjm.current_team_ids: the teams whose jobs they see).
SELECT vjm.current_team_ids();

-- team_member_get_many --
-- Members of one team that the caller may see.
SELECT team_id, user_id, role, added_at FROM vjm.team_members WHERE team_id = :team_id ORDER BY added_at, user_id LIMIT :limit;

-- identity_current_role --
-- The role this session acts as now (a login's default role, ALTER ROLE ... SET role, shows here).
SELECT current_user::text;

-- identity_set_local_role --
-- Act as a run-time role for the rest of this transaction only (behind a transaction pooler: store/pooler.py).
SELECT set_config('role', :role, true);
