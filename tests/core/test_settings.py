"""Production settings: switched on by environment values alone, refused when unsafe, clean under check --deploy.

Each test starts a real process with a scrubbed environment, as a deployment would.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings as django_settings

BASE_DIR = Path(django_settings.BASE_DIR)

# Every variable config/settings.py reads is removed from the child's environment first, so the
# outcome depends only on what each test sets.
_SETTINGS_VARIABLES = {
    "DJANGO_ENV", "SECRET_KEY", "SECRET_KEY_FILE", "DEBUG", "ALLOWED_HOSTS", "CSRF_TRUSTED_ORIGINS", "SITE_URL",
    "DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL", "CELERY_RESULT_BACKEND", "CELERY_TASK_ALWAYS_EAGER",
    "S3_BUCKET", "S3_ENDPOINT_URL", "S3_ACCESS_KEY_ID", "S3_SECRET_ACCESS_KEY", "S3_REGION", "EMAIL_BACKEND",
    "SESSION_COOKIE_SECURE", "CSRF_COOKIE_SECURE", "SECURE_SSL_REDIRECT", "SECURE_HSTS_SECONDS", "BEHIND_TLS_PROXY",
    "ACCOUNT_EMAIL_VERIFICATION", "READROOM_VAR_DIR", "VIEWER_DIR",
}

SHOW_SETTINGS = """
import json
import django
django.setup()
from django.conf import settings as s
print(json.dumps({
    "DEBUG": s.DEBUG,
    "SESSION_COOKIE_SECURE": s.SESSION_COOKIE_SECURE,
    "CSRF_COOKIE_SECURE": s.CSRF_COOKIE_SECURE,
    "SESSION_COOKIE_HTTPONLY": s.SESSION_COOKIE_HTTPONLY,
    "SECURE_HSTS_SECONDS": s.SECURE_HSTS_SECONDS,
    "SECURE_SSL_REDIRECT": s.SECURE_SSL_REDIRECT,
    "ALLOWED_HOSTS": s.ALLOWED_HOSTS,
    "DB_ENGINE": s.DATABASES["default"]["ENGINE"],
    "STORAGE": s.STORAGES["default"]["BACKEND"],
    "EMAIL_BACKEND": s.EMAIL_BACKEND,
    "CELERY_TASK_ALWAYS_EAGER": s.CELERY_TASK_ALWAYS_EAGER,
}))
"""


def production_env(tmp_path: Path, **overrides: str | None) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if key not in _SETTINGS_VARIABLES}
    env.update({
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DJANGO_ENV": "production",
        "SECRET_KEY": secrets.token_urlsafe(64),
        "ALLOWED_HOSTS": "readroom.example.com",
        "DATABASE_URL": "postgres://readroom@127.0.0.1:5432/readroom",
        "REDIS_URL": "redis://127.0.0.1:6379/0",
        "S3_BUCKET": "readroom-phi",
        "READROOM_VAR_DIR": str(tmp_path / "var"),
    })
    for key, value in overrides.items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    return env


def run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, *args], cwd=BASE_DIR, env=env, capture_output=True, text=True,
                          timeout=120, check=False)


def test_check_deploy_reports_no_issues_under_production_settings(tmp_path):
    result = run(["manage.py", "check", "--deploy", "--fail-level", "WARNING"], production_env(tmp_path))

    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout


def test_production_turns_debug_off_and_cookies_secure_and_hsts_on(tmp_path):
    result = run(["-c", SHOW_SETTINGS], production_env(tmp_path))

    assert result.returncode == 0, result.stderr
    values = json.loads(result.stdout.strip().splitlines()[-1])
    assert values["DEBUG"] is False
    assert values["SESSION_COOKIE_SECURE"] is True
    assert values["CSRF_COOKIE_SECURE"] is True
    assert values["SESSION_COOKIE_HTTPONLY"] is True
    assert values["SECURE_HSTS_SECONDS"] >= 31536000
    assert values["SECURE_SSL_REDIRECT"] is True
    assert values["ALLOWED_HOSTS"] == ["readroom.example.com"]
    assert values["DB_ENGINE"] == "core.postgresql"
    assert values["STORAGE"] == "storages.backends.s3.S3Storage"
    assert values["EMAIL_BACKEND"] == "django.core.mail.backends.smtp.EmailBackend"
    assert values["CELERY_TASK_ALWAYS_EAGER"] is False


def test_embedded_default_runs_on_sqlite_local_files_eager_tasks_and_console_email(tmp_path):
    env = production_env(tmp_path)
    for key in ("DJANGO_ENV", "SECRET_KEY", "ALLOWED_HOSTS", "DATABASE_URL", "REDIS_URL", "S3_BUCKET"):
        env.pop(key)

    result = run(["-c", SHOW_SETTINGS], env)

    assert result.returncode == 0, result.stderr
    values = json.loads(result.stdout.strip().splitlines()[-1])
    assert values["DEBUG"] is True
    assert values["DB_ENGINE"] == "django.db.backends.sqlite3"
    assert values["STORAGE"] == "django.core.files.storage.FileSystemStorage"
    assert values["EMAIL_BACKEND"] == "django.core.mail.backends.console.EmailBackend"
    assert values["CELERY_TASK_ALWAYS_EAGER"] is True


@pytest.mark.parametrize(
    ("label", "secret_key"),
    [
        ("missing", None),
        ("empty", ""),
        ("too short", "x" * 20),
        ("the development key", "dev-insecure-readroom-secret-key-never-use-in-production"),
    ],
)
def test_production_refuses_to_start_without_a_real_secret_key(tmp_path, label, secret_key):
    result = run(["manage.py", "check"], production_env(tmp_path, SECRET_KEY=secret_key))

    assert result.returncode != 0, f"started with a {label} SECRET_KEY"
    assert "SECRET_KEY" in result.stderr


def test_production_reads_the_secret_key_from_a_file(tmp_path):
    key_file = tmp_path / "secret_key"
    key_file.write_text(secrets.token_urlsafe(64) + "\n")

    result = run(["manage.py", "check", "--deploy", "--fail-level", "WARNING"],
                 production_env(tmp_path, SECRET_KEY=None, SECRET_KEY_FILE=str(key_file)))

    assert result.returncode == 0, result.stdout + result.stderr


def test_production_refuses_debug_on(tmp_path):
    result = run(["manage.py", "check"], production_env(tmp_path, DEBUG="true"))

    assert result.returncode != 0
    assert "DEBUG must be off" in result.stderr


@pytest.mark.parametrize("missing", ["DATABASE_URL", "S3_BUCKET"])
def test_production_refuses_to_start_on_embedded_database_or_local_files(tmp_path, missing):
    result = run(["manage.py", "check"], production_env(tmp_path, **{missing: None}))

    assert result.returncode != 0
    assert missing in result.stderr


def test_a_malformed_boolean_is_a_configuration_error_not_a_silent_default(tmp_path):
    result = run(["manage.py", "check"], production_env(tmp_path, SESSION_COOKIE_SECURE="maybe"))

    assert result.returncode != 0
    assert "SESSION_COOKIE_SECURE must be a boolean" in result.stderr


def test_readme_documents_every_environment_variable_the_settings_read():
    source = (BASE_DIR / "config" / "settings.py").read_text()
    read = set(re.findall(r'(?:env_str|env_bool|env_int|env_list|os\.environ\.get)\(\s*"([A-Z][A-Z0-9_]*)"', source))
    readme = (BASE_DIR / "README.md").read_text()
    documented = set(re.findall(r"^\| `([A-Z][A-Z0-9_]*)`", readme, flags=re.MULTILINE))

    assert len(read) >= 30  # the pattern still finds the settings' reads
    assert read - documented == set(), "add these to the README's environment table"
    assert documented - read == set(), "the README documents variables the settings no longer read"


def test_readme_quick_start_is_one_block_of_exactly_two_commands():
    readme = (BASE_DIR / "README.md").read_text()
    section = readme.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```sh\n(.*?)```", section, flags=re.DOTALL)

    assert len(blocks) == 1
    assert blocks[0].split("\n")[:-1] == ["bin/dev up", "bin/dev test"]
    assert os.access(BASE_DIR / "bin" / "dev", os.X_OK)
