"""SES in the loop: two-way sync with the account-level suppression list (``suppression_sync``),
SES's own reputation figures (``reputation``) and alerts the moment a rate or the landing goes wrong
(``alerts``). Every table these modules write is created by ``schema.ensure_ses_schema``."""
