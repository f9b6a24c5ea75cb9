"""Settings of the test project: production-like (DEBUG off, hosts checked), nothing stored."""

SECRET_KEY = "treadle-tests-only-this-is-not-a-secret"
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
ROOT_URLCONF = "tests.data.django_site.urls"
INSTALLED_APPS: list[str] = []
MIDDLEWARE = [
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
]
DATABASES: dict[str, dict[str, str]] = {}
TEMPLATES: list[dict[str, object]] = []
USE_TZ = True
WSGI_APPLICATION = "tests.data.django_site.wsgi.application"
TIME_ZONE = "UTC"
