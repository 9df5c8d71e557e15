# Stage rules: predict (filled in by its issue).
