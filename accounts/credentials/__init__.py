"""Radiologist profiles and credentialing: licenses, certifications, insurance, MQSA, privileges.

Models live in ``accounts.credentials.models`` (re-exported by ``accounts.models``); writes in
``services``, reads in ``selectors``, who-may-do-what in ``policy``, the one eligibility rule in
``eligibility``.
"""
