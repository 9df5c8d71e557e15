# Stage rules: analyze (filled in by its issue).
