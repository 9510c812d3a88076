"""Quality (issue 16): overreads and two-level reads, RADPEER peer review with arbitration, and statistics.

- ``overreads``: the overreader's signed verdict, the original reader's answer, addendum requests, two levels.
- ``sampling``: which signed reports are peer reviewed (a share per programme, stratified by modality).
- ``peer_review``: the blinded review's states, arbitration, and the reader quality the marketplace ranks by.
- ``stats``: per-reader and per-modality figures for centers, groups, readers and operations.
"""
