"""
django-otp's TOTPDevice.verify_token, timed, for bench/sections/sqlite.ts.

Usage: /usr/bin/python3 verify_bench.py DIR JOURNAL_MODE

Writes a minimal Django project into DIR (settings with one SQLite database file), migrates
it, creates a user and a TOTP device (django-otp's defaults: SHA1, 6 digits, step 30 s,
tolerance 1, throttling on), then answers commands on stdin, one per line:

  run N         times N verifications and prints {"ops": N, "seconds": s, "mode": "instance"}:
                TOTPDevice.verify_token on the device instance, each with the valid code of
                the next time step (django-otp's clock is moved one step per call: every
                call is a success that saves the device, so a durable commit, never a replay)
  run-load N    the same through django_otp.verify_token(user, persistent_id, token), which
                loads the device in a transaction (SELECT … FOR UPDATE) and then verifies it:
                what a login view does
  quit

Durability: every connection runs PRAGMA journal_mode=JOURNAL_MODE (WAL by default) and
PRAGMA synchronous=FULL, the same as factorstream's SQLite store: one fsync per commit.
Django runs in autocommit mode, so each verify_token's save() is its own commit.
"""
import json
import os
import sys
import time
import types

DIR = os.path.abspath(sys.argv[1])
JOURNAL = sys.argv[2] if len(sys.argv) > 2 else 'WAL'

SETTINGS = '''
SECRET_KEY = "factorstream-bench"
USE_TZ = True
TIME_ZONE = "UTC"
INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django_otp",
    "django_otp.plugins.otp_totp",
]
DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": %r}}
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"
''' % os.path.join(DIR, 'django.sqlite3')

os.makedirs(DIR, exist_ok=True)
with open(os.path.join(DIR, 'bench_settings.py'), 'w') as f:
    f.write(SETTINGS)
sys.path.insert(0, DIR)
os.environ['DJANGO_SETTINGS_MODULE'] = 'bench_settings'

import django  # noqa: E402
from django.db.backends.signals import connection_created  # noqa: E402


def pragmas(sender, connection, **kwargs):
    if connection.vendor == 'sqlite':
        cursor = connection.cursor()
        cursor.execute('PRAGMA journal_mode=%s' % JOURNAL)
        cursor.execute('PRAGMA synchronous=FULL')


connection_created.connect(pragmas)
django.setup()

import django_otp  # noqa: E402
from django.contrib.auth import get_user_model  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402
from django_otp.oath import TOTP  # noqa: E402
from django_otp.plugins.otp_totp import models as totp_models  # noqa: E402
from django_otp.plugins.otp_totp.models import TOTPDevice  # noqa: E402

call_command('migrate', verbosity=0)
user = get_user_model().objects.create_user('bench', 'bench@example.com', 'pw')
device = TOTPDevice.objects.create(user=user, name='bench', confirmed=True)

# django-otp reads the clock as time.time() in its models module: give it one we move.
now = [1_704_067_200.0]
totp_models.time = types.SimpleNamespace(time=lambda: now[0])


def code_at(t):
    totp = TOTP(device.bin_key, device.step, device.t0, device.digits, device.drift)
    totp.time = t
    return '%06d' % totp.token()


def timed(n, load):
    tokens = []
    for i in range(n):
        tokens.append(code_at(now[0] + (i + 1) * 30))
    pid = device.persistent_id
    start = time.perf_counter()
    for i in range(n):
        now[0] += 30
        if load:
            ok = django_otp.verify_token(user, pid, tokens[i]) is not None
        else:
            ok = device.verify_token(tokens[i])
        if not ok:
            raise SystemExit('django-otp rejected a valid code at step %d' % i)
    seconds = time.perf_counter() - start
    if load:
        device.refresh_from_db()
    return seconds


with connection.cursor() as c:
    c.execute('PRAGMA journal_mode')
    journal = c.fetchone()[0]
    c.execute('PRAGMA synchronous')
    synchronous = c.fetchone()[0]
    c.execute('select sqlite_version()')
    sqlite_version = c.fetchone()[0]

print(json.dumps({
    'ready': True,
    'django': django.get_version(),
    'django_otp': getattr(django_otp, '__version__', None) or __import__('importlib.metadata').metadata.version('django-otp'),
    'python': sys.version.split()[0],
    'sqlite': sqlite_version,
    'journal_mode': journal,
    'synchronous': synchronous,
}), flush=True)

for line in sys.stdin:
    parts = line.split()
    if not parts:
        continue
    if parts[0] == 'quit':
        break
    n = int(parts[1])
    seconds = timed(n, parts[0] == 'run-load')
    print(json.dumps({'ops': n, 'seconds': seconds, 'mode': 'load' if parts[0] == 'run-load' else 'instance'}), flush=True)
