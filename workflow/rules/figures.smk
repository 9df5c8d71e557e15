# Stage rules: figures (filled in by its issue).
