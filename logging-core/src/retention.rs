//! Index retention (being written in its own issue).
