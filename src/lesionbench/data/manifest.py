"""The raw manifest (``raw_manifest.csv``) that acquire writes and split and prepare read."""

MANIFEST_COLUMNS = ["case_id", "image", "mask", "official_split"]
