"""The Engagement pillar's models come with it (briefs, health checks). In-app notifications, which every
pillar sends, live in the ground-floor app truenorth/notifications (the table keeps its name,
engagement_notification)."""
