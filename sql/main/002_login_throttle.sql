-- SplitVault main database, schema version 2: the sign-in throttle.
-- Applied by `splitvault-admin schema` inside one transaction.
--
-- Names in login_throttle were keyed 'n:' and the first 16 bytes of an
-- unsalted SHA-256 of the lower-cased name, which a dump lets anyone test
-- guesses against (and a password typed into the name box with them). They
-- are now 'n:' and the 32-byte HMAC-SHA256 of the name under a key that is
-- not in the database (docs/configuration.md, SplitVaultLoginKeyFile): the
-- old rows go. Expired rows are purged as sign-ins fail, by first_failure.
DELETE FROM login_throttle WHERE key LIKE 'n:%' AND length(key) <> 66;
CREATE INDEX login_throttle_first_failure_idx ON login_throttle (first_failure);

-- Failed sign-ins are no longer counted per account: a failure costs the
-- same work whether the name exists or not (the counts live in
-- login_throttle, keyed by name whether it exists or not). The two columns
-- stay, unused, so that a front end still running the previous module
-- (which prepares statements naming them) keeps working during an upgrade.
COMMENT ON COLUMN staff.failed_logins IS 'unused since schema version 2';
COMMENT ON COLUMN staff.locked_until IS 'unused since schema version 2';

INSERT INTO schema_version (version, name) VALUES (2, 'login-throttle');
