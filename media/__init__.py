"""Photos (contract: Media): uploads stored in MongoDB GridFS, attached to posts and check-ins,
served from unguessable URLs, expired when never used. See docs/design.md, "Photos (issue 15)"."""
