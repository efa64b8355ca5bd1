"""The first schema: users, submissions (with their bundles and scores), settings.

Revision ID: 0001
Revises:
"""
import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "users",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.String(64), nullable=False, unique=True),
        sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("is_admin", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("daily_limit", sa.Integer, nullable=False, server_default="10"),
        sa.Column("created_at", sa.DateTime, nullable=False),
    )
    op.create_table(
        "submissions",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id"), nullable=False),
        sa.Column("track", sa.String(16), nullable=False),
        sa.Column("pseudonym", sa.String(32), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("bundle", sa.LargeBinary, nullable=False),
        sa.Column("bundle_bytes", sa.Integer, nullable=False),
        sa.Column("bundle_sha256", sa.String(64), nullable=False),
        sa.Column("local_json", sa.Text, nullable=False),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.Column("started_at", sa.DateTime),
        sa.Column("finished_at", sa.DateTime),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("evaluations", sa.Integer, nullable=False, server_default="0"),
        sa.Column("error", sa.Text),
        sa.Column("score_public", sa.Float),
        sa.Column("score_private", sa.Float),
        sa.Column("result_json", sa.Text),
        sa.Column("sandbox", sa.String(32)),
    )
    op.create_index("ix_submissions_status", "submissions", ["status", "id"])
    op.create_index("ix_submissions_user_time", "submissions", ["user_id", "created_at"])
    op.create_index("ix_submissions_track", "submissions", ["track", "status"])
    op.create_table(
        "settings",
        sa.Column("key", sa.String(64), primary_key=True),
        sa.Column("value", sa.Text, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("settings")
    op.drop_index("ix_submissions_track", "submissions")
    op.drop_index("ix_submissions_user_time", "submissions")
    op.drop_index("ix_submissions_status", "submissions")
    op.drop_table("submissions")
    op.drop_table("users")
