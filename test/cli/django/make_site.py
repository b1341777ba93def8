"""
Test set-up for the django-otp import (test/cli/django-import.test.ts).

Usage: python3 make_site.py DIR UNIX_SECONDS

Writes a tiny Django project into DIR (settings.py, manage.py, an SQLite database), migrates
it, creates users and django-otp devices with known keys and non-default parameters, and
writes DIR/expected.json: what django-otp itself accepts at the instant UNIX_SECONDS, found
by calling each device's own verify_token with the clock set to that instant, inside a
transaction that is rolled back (verify_token mutates the row; the database is left as
created, ready for `manage.py dumpdata`).
"""
import json
import os
import sys
from datetime import datetime, timedelta, timezone as dt_timezone
from unittest import mock

DIR = os.path.abspath(sys.argv[1])
NOW = int(sys.argv[2])

SETTINGS = '''
SECRET_KEY = "factorstream-import-test"
USE_TZ = True
TIME_ZONE = "UTC"
INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "django_otp.plugins.otp_hotp",
    "django_otp.plugins.otp_static",
    "django_otp.plugins.otp_email",
]
DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": %r}}
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
''' % os.path.join(DIR, 'site.sqlite3')

MANAGE = '''#!/usr/bin/env python3
import os, sys
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "settings")
from django.core.management import execute_from_command_line
execute_from_command_line(sys.argv)
'''

os.makedirs(DIR, exist_ok=True)
with open(os.path.join(DIR, 'settings.py'), 'w') as f:
    f.write(SETTINGS)
with open(os.path.join(DIR, 'manage.py'), 'w') as f:
    f.write(MANAGE)

sys.path.insert(0, DIR)
os.environ['DJANGO_SETTINGS_MODULE'] = 'settings'
import django  # noqa: E402

django.setup()

from django.contrib.auth import get_user_model  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import transaction  # noqa: E402
from django_otp.oath import hotp  # noqa: E402
from django_otp.plugins.otp_email.models import EmailDevice  # noqa: E402
from django_otp.plugins.otp_hotp.models import HOTPDevice  # noqa: E402
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken  # noqa: E402
from django_otp.plugins.otp_totp.models import TOTPDevice  # noqa: E402

call_command('migrate', verbosity=0)

User = get_user_model()
alice = User.objects.create_user('alice', 'alice@example.com', 'pw')
bob = User.objects.create_user('bob', 'bob@example.org', 'pw')
carol = User.objects.create_user('carol', '', 'pw')

def at(seconds):
    return datetime.fromtimestamp(seconds, tz=dt_timezone.utc)

def t_of(step, t0, seconds=NOW):
    return (int(seconds) - t0) // step

# TOTP with django-otp's defaults, except that the current step was already used (last_t).
on_time = TOTPDevice.objects.create(
    user=alice, name='Phone', key='3132333435363738393031323334353637383930', confirmed=True,
    last_t=t_of(30, 0),
)
# TOTP with everything non-default: 10-byte key, 60 s step, t0, 8 digits, tolerance 2, drift -1.
drifted = TOTPDevice.objects.create(
    user=alice, name='Old token', key='0a1b2c3d4e5f60718293', step=60, t0=1000, digits=8, tolerance=2,
    drift=-1, last_t=-1, confirmed=True,
)
# TOTP locked by three failures 1.5 s ago (4 s wait with factor 1): locked until NOW + 2.5 s.
locked = TOTPDevice.objects.create(
    user=bob, name='', key='00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff', confirmed=False,
    throttling_failure_count=3, throttling_failure_timestamp=at(NOW) - timedelta(milliseconds=1500),
)
# HOTP: 8 digits, look-ahead 3, counter 7.
hotp_device = HOTPDevice.objects.create(
    user=bob, name='Key fob', key='fedcba9876543210fedcba9876543210fedcba98', digits=8, tolerance=3, counter=7,
    confirmed=True,
)
# Static: two good tokens (one of them twice) and one that cannot be typed as a factorstream code.
static = StaticDevice.objects.create(user=alice, name='Backup codes', confirmed=True)
for token in ['abcd2345', 'zyxw7654', 'zyxw7654', 'bad-token!']:
    StaticToken.objects.create(device=static, token=token)
# E-mail devices: one with no address of its own (the user's is used), one with its own.
email_user = EmailDevice.objects.create(user=alice, name='Mail', email=None, confirmed=True)
email_own = EmailDevice.objects.create(user=bob, name='Work mail', email='bob.otp@example.net', confirmed=True)
# ... with a code sent before the dump, valid until 100.123456 s after NOW (Django keeps microseconds).
PENDING_TOKEN = '246810'
email_own.token = PENDING_TOKEN
email_own.valid_until = at(NOW) + timedelta(seconds=100, microseconds=123456)
email_own.save()
# A key shorter than 10 bytes: not importable.
short = TOTPDevice.objects.create(user=carol, name='Short', key='0011223344556677', confirmed=True)


def accepted(device, token, seconds):
    """Whether django-otp accepts `token` at `seconds`; the device's row is left unchanged."""
    with mock.patch('time.time', return_value=float(seconds)), \
            mock.patch('django.utils.timezone.now', return_value=at(seconds)):
        with transaction.atomic():
            fresh = type(device).objects.get(pk=device.pk)
            ok = fresh.verify_token(token)
            transaction.set_rollback(True)
    return bool(ok)


def accepted_at(device, token, when):
    """Whether django-otp accepts `token` at the datetime `when` (microseconds kept); the row is left unchanged."""
    with mock.patch('django.utils.timezone.now', return_value=when):
        with transaction.atomic():
            fresh = type(device).objects.get(pk=device.pk)
            ok = fresh.verify_token(token)
            transaction.set_rollback(True)
    return bool(ok)


def code(device, counter):
    return str(hotp(bytes.fromhex(device.key), counter, device.digits)).zfill(device.digits)


def totp_candidates(device, seconds):
    t = t_of(device.step, device.t0, seconds)
    out = []
    for s in range(t + device.drift - device.tolerance - 2, t + device.drift + device.tolerance + 3):
        if s < 0:
            continue
        c = code(device, s)
        out.append({'step': s, 'code': c, 'accepted': accepted(device, c, seconds)})
    return out


def hotp_candidates(device):
    out = []
    for n in range(max(0, device.counter - 2), device.counter + device.tolerance + 3):
        c = code(device, n)
        out.append({'counter': n, 'code': c, 'accepted': accepted(device, c, NOW)})
    return out


with mock.patch('django.utils.timezone.now', return_value=at(NOW)):
    allowed, why = locked.verify_is_allowed()
assert not allowed
locked_until = why['locked_until'].timestamp()

expected = {
    'now': NOW,
    'users': {u.pk: u.username for u in (alice, bob, carol)},
    'devices': {
        'on_time': {'ref': on_time.persistent_id, 'user': 'alice', 't': t_of(30, 0), 'last_t': on_time.last_t,
                    'candidates': totp_candidates(on_time, NOW)},
        'drifted': {'ref': drifted.persistent_id, 'user': 'alice', 'candidates': totp_candidates(drifted, NOW)},
        'locked': {'ref': locked.persistent_id, 'user': 'bob', 'locked_until': locked_until,
                   'failure_count': locked.throttling_failure_count,
                   # locked now: django-otp accepts nothing, not even the right code
                   'candidates_now': totp_candidates(locked, NOW),
                   'candidates_after': totp_candidates(locked, int(locked_until) + 1),
                   'accepted_at_unlock': accepted(locked, code(locked, t_of(30, 0, locked_until)), locked_until)},
        'hotp': {'ref': hotp_device.persistent_id, 'user': 'bob', 'candidates': hotp_candidates(hotp_device)},
        'static': {'ref': static.persistent_id, 'user': 'alice',
                   'tokens': {t: accepted(static, t, NOW) for t in ['abcd2345', 'zyxw7654', 'nope2345']}},
        'email_user': {'ref': email_user.persistent_id, 'user': 'alice', 'to': 'alice@example.com'},
        'email_own': {'ref': email_own.persistent_id, 'user': 'bob', 'to': 'bob.otp@example.net',
                      'pending': {
                          'token': PENDING_TOKEN,
                          'valid_until': email_own.valid_until.isoformat().replace('+00:00', 'Z'),
                          'valid_until_us': int(email_own.valid_until.timestamp()) * 1_000_000 + email_own.valid_until.microsecond,
                          # django-otp's own answers 1 ms before valid_until, at it, and 1 ms after
                          'accepted': {str(ms): accepted_at(email_own, PENDING_TOKEN, email_own.valid_until + timedelta(milliseconds=ms))
                                       for ms in (-1, 0, 1)},
                          'accepted_after_wrong_code': accepted_at(email_own, '000000', email_own.valid_until - timedelta(milliseconds=1)),
                      }},
        'short': {'ref': short.persistent_id, 'user': 'carol'},
    },
}
with open(os.path.join(DIR, 'expected.json'), 'w') as f:
    json.dump(expected, f, indent=2)
