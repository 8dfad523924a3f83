-- The label's entities (spec section 2). The schema enforces integrity on its own: foreign
-- keys, unique constraints, CHECK constraints on enumerations, lengths and ranges, so that no
-- code path (or hand-written SQL) can store what the application would refuse.

CREATE TABLE label.users (
    id            BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name          TEXT        NOT NULL CHECK (char_length(name) BETWEEN 1 AND 128),
    email         TEXT        NOT NULL CHECK (char_length(email) BETWEEN 3 AND 254 AND position('@' IN email) > 1),
    -- argon2id PHC string; the plaintext is never stored.
    password_hash TEXT        NOT NULL CHECK (password_hash LIKE '$argon2id$%'),
    role          TEXT        NOT NULL DEFAULT 'nonmember'
                              CHECK (role IN ('nonmember', 'artist', 'manager', 'admin')),
    created_at    TIMESTAMPTZ NOT NULL DEFAULT now()
);
-- E-mail addresses are unique whatever their case.
CREATE UNIQUE INDEX users_email_key ON label.users (lower(email));

CREATE TABLE label.managers (
    id         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id    BIGINT      NOT NULL UNIQUE REFERENCES label.users (id),
    created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE TABLE label.artists (
    id           BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id      BIGINT      NOT NULL UNIQUE REFERENCES label.users (id),
    nickname     TEXT        NOT NULL CHECK (char_length(nickname) BETWEEN 1 AND 32),
    contract_due DATE        NOT NULL,
    active       BOOLEAN     NOT NULL DEFAULT true,
    manager_id   BIGINT      NOT NULL REFERENCES label.managers (id),
    created_at   TIMESTAMPTZ NOT NULL DEFAULT now()
);
-- Nicknames are unique whatever their case: "Nova" and "nova" are one artist to fans.
CREATE UNIQUE INDEX artists_nickname_key ON label.artists (lower(nickname));
CREATE INDEX artists_manager_idx ON label.artists (manager_id);

CREATE TABLE label.releases (
    id         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    title      TEXT        NOT NULL CHECK (char_length(title) BETWEEN 1 AND 256),
    created_on DATE        NOT NULL,
    status     TEXT        NOT NULL DEFAULT 'Unpublished' CHECK (status IN ('Unpublished', 'Published')),
    artist_id  BIGINT      NOT NULL REFERENCES label.artists (id),
    created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX releases_artist_idx ON label.releases (artist_id, id);

CREATE TABLE label.tracks (
    id               BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    release_id       BIGINT  NOT NULL REFERENCES label.releases (id) ON DELETE CASCADE,
    position         INTEGER NOT NULL CHECK (position >= 1),
    title            TEXT    NOT NULL CHECK (char_length(title) BETWEEN 1 AND 64),
    duration_seconds INTEGER NOT NULL CHECK (duration_seconds BETWEEN 1 AND 9999),
    genre            TEXT    NOT NULL CHECK (char_length(genre) BETWEEN 1 AND 32),
    kind             TEXT    NOT NULL CHECK (char_length(kind) BETWEEN 1 AND 32),
    UNIQUE (release_id, position)
);

-- The artists taking part in a track; the release's owner is always one of them.
CREATE TABLE label.track_artists (
    track_id  BIGINT NOT NULL REFERENCES label.tracks (id) ON DELETE CASCADE,
    artist_id BIGINT NOT NULL REFERENCES label.artists (id),
    PRIMARY KEY (track_id, artist_id)
);
CREATE INDEX track_artists_artist_idx ON label.track_artists (artist_id);

CREATE TABLE label.publications (
    id           BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    -- A release is published once.
    release_id   BIGINT      NOT NULL UNIQUE REFERENCES label.releases (id),
    scheduled_on DATE        NOT NULL,
    manager_id   BIGINT      NOT NULL REFERENCES label.managers (id),
    created_at   TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX publications_scheduled_idx ON label.publications (scheduled_on);

-- The publishing manager must be the manager of the release's owner: a cross-table rule,
-- hence a trigger rather than a CHECK.
CREATE FUNCTION label.publication_manager_check() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NOT EXISTS (
        SELECT 1 FROM label.releases r JOIN label.artists a ON a.id = r.artist_id
        WHERE r.id = NEW.release_id AND a.manager_id = NEW.manager_id
    ) THEN
        RAISE EXCEPTION 'publication % : manager % is not the manager of the release''s owner',
            NEW.release_id, NEW.manager_id
            USING ERRCODE = 'check_violation', CONSTRAINT = 'publications_manager_check';
    END IF;
    RETURN NEW;
END;
$$;
CREATE TRIGGER publications_manager_check BEFORE INSERT OR UPDATE ON label.publications
    FOR EACH ROW EXECUTE FUNCTION label.publication_manager_check();

CREATE TABLE label.requests (
    id            BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kind          TEXT        NOT NULL CHECK (kind IN ('Sign', 'Publish')),
    status        TEXT        NOT NULL DEFAULT 'New'
                              CHECK (status IN ('New', 'Processing', 'On approval', 'Closed')),
    created_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    applicant_id  BIGINT      NOT NULL REFERENCES label.users (id),
    manager_id    BIGINT      REFERENCES label.managers (id),
    description   TEXT        NOT NULL DEFAULT '',
    -- Sign: the desired nickname.
    nickname      TEXT        CHECK (char_length(nickname) BETWEEN 1 AND 32),
    -- Publish: the release, the expected date, the evaluation.
    release_id    BIGINT      REFERENCES label.releases (id),
    expected_date DATE,
    grade         INTEGER     CHECK (grade <= 0),
    evaluation    JSONB       CHECK (evaluation IS NULL OR jsonb_typeof(evaluation) = 'array'),
    -- Deferred-step attempts that had to be retried.
    attempts      INTEGER     NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    CONSTRAINT requests_shape_check CHECK (
        (kind = 'Sign' AND nickname IS NOT NULL AND release_id IS NULL AND expected_date IS NULL
            AND grade IS NULL AND evaluation IS NULL)
        OR (kind = 'Publish' AND nickname IS NULL AND release_id IS NOT NULL
            AND expected_date IS NOT NULL AND manager_id IS NOT NULL)
    ),
    CONSTRAINT requests_processing_check CHECK (status <> 'Processing' OR kind = 'Publish'),
    CONSTRAINT requests_on_approval_check CHECK (status <> 'On approval' OR manager_id IS NOT NULL)
);
-- One open sign request per user, one open publish request per release, and no two open
-- sign requests asking for the same nickname.
CREATE UNIQUE INDEX requests_one_open_sign ON label.requests (applicant_id)
    WHERE kind = 'Sign' AND status <> 'Closed';
CREATE UNIQUE INDEX requests_one_open_publish ON label.requests (release_id)
    WHERE kind = 'Publish' AND status <> 'Closed';
CREATE UNIQUE INDEX requests_open_nickname ON label.requests (lower(nickname))
    WHERE kind = 'Sign' AND status <> 'Closed';
-- A manager's open load (assignment) and inbox, an applicant's list.
CREATE INDEX requests_manager_idx ON label.requests (manager_id, created_at DESC);
CREATE INDEX requests_applicant_idx ON label.requests (applicant_id, created_at DESC);
