"""SoLoMo: social-local-mobile check-ins, feeds, offers and moderation with real-time push."""

__version__ = "0.1.0"
