# Stage rules: train (filled in by its issue).
