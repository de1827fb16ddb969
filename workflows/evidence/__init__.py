"""Evidence that stands alone: the audit log (RFC 6962) and its signed checkpoints, the keys,
PAdES signatures under each unit's CA, the evidence pack and its offline verifier."""
