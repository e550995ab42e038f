"""Android phones over the `adb` CLI: devices, shell and file transfer (`adb.py`), and the official
benchmark runners kept in the user cache (`runners.py`)."""
