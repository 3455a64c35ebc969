"""django-open-humans: log people in through Open Humans and work with their data."""

__version__ = "1.0.0"
