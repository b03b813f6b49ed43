-- Services read the change feed as vjm_processor (e.g. the HTTP stream for a service
-- token, when the application logs in as vjm_app): every job's changes, read only.

SET LOCAL ROLE vjm_owner;  -- objects are owned by vjm_owner from birth (see 003_roles.sql)

GRANT SELECT ON vjm.job_changes TO vjm_processor;
CREATE POLICY processor_read ON vjm.job_changes FOR SELECT TO vjm_processor USING (true);
