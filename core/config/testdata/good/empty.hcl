# Nothing set: every default applies and no detector runs.
