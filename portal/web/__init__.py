"""Server-rendered web pages: the plumbing every page shares (templates, language, CSRF).

Pages live with their domain: `portal/cases/pages.py` for residents, `portal/staff/pages.py`
for the staff console. Templates are under `portal/web/templates/`, static files (no build
step, no CDN) under `portal/web/static/`, served at /static.
"""
