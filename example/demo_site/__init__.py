"""A small Django site that uses django-open-humans the way any project would."""
