# Stage rules: evaluate (filled in by its issue).
