"""Values an attacker sends: SQL-looking text, control characters in file names, ids that are not UUIDs."""

from __future__ import annotations

INJECTIONS = ["'; DROP TABLE vjm.job_events; --", "1 OR 1=1", "vjm_admin; RESET ROLE", "\") OR true --",
              "$1", "%s", "\\x00"]
CONTROL_FILENAMES = ["bell\x07.mp4", "nul\x00.mp4", "new\nline.mp4", "rtl\u202egnp.mp4", "zero\u200bwidth.mp4",
                     "esc\x1b[31m.mp4", "tab\t.mp4", "\ud800.mp4"]
NOT_UUIDS = ["not-a-uuid", "", "123", "00000000-0000-0000-0000-00000000000g", 12345, 3.5, ["a"], {"a": 1},
             b"bytes", *INJECTIONS]
