"""A minimal Django project for the end-to-end WSGI tests.

Served as ``tests.data.django_site.wsgi:application``.

No database and no templates: the views build their pages by hand. CSRF protection is on,
as in any Django project, so the form test must fetch a token and send it back with its
cookie.
"""
