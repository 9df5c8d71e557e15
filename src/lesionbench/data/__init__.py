"""The data stage: acquisition, preparation, splitting, lesion enumeration and checks."""
