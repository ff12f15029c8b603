-- Customers and sign-in: the key store of crypto-shredding, id sequences, and the account read
-- tables of shared/SCHEMA.dbml (written only by the users and notifications projectors).

-- pgcrypto decrypts personal data inside the projectors' set-based statements (pii_open).
CREATE EXTENSION IF NOT EXISTS pgcrypto;

-- One AES-256 key per user, kept outside the log. Personal data in events is sealed with it;
-- erasing the account deletes the row, after which the sealed values in the log are noise to
-- every reader, a rebuild included (crypto-shredding). Never copied anywhere else.
CREATE TABLE user_keys (
    user_id    bigint      PRIMARY KEY,
    key        bytea       NOT NULL CHECK (length(key) = 32),
    created_at timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE user_keys IS 'Per-user keys of sealed personal data in events; deleting a row erases the person.';

-- pii_open(sealed, key) is the plaintext of a value sealed by package pii (base64 of a 16-byte IV
-- followed by AES-256-CBC/PKCS#7 ciphertext), or NULL when the key is gone (erased). The empty string seals to itself.
CREATE FUNCTION pii_open(sealed text, key bytea) RETURNS text
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
    SELECT CASE WHEN sealed = '' THEN '' ELSE
        convert_from(decrypt_iv(substring(decode(sealed, 'base64') FROM 17), key,
            substring(decode(sealed, 'base64') FROM 1 FOR 16), 'aes-cbc/pad:pkcs'), 'UTF8') END
$$;

CREATE SEQUENCE user_ids AS bigint;
CREATE SEQUENCE email_ids AS bigint;
CREATE SEQUENCE phone_ids AS bigint;
CREATE SEQUENCE address_ids AS bigint;

-- users.password holds the argon2id hash (ARCHITECTURE.md's deviation); NULL for an account that
-- signs in with Google only. role and email_verified are the store's additions.
CREATE TABLE users (
    id             bigint       PRIMARY KEY,
    first_name     varchar(50)  NOT NULL,
    last_name      varchar(50)  NOT NULL,
    password       text,
    role           text         NOT NULL DEFAULT 'customer',
    email_verified boolean      NOT NULL DEFAULT false,
    version        bigint       NOT NULL,
    created_at     timestamp    NOT NULL DEFAULT now(),
    updated_at     timestamp    NOT NULL DEFAULT now()
);
CREATE INDEX users_first_name_idx ON users (lower(first_name) text_pattern_ops);
CREATE INDEX users_last_name_idx ON users (lower(last_name) text_pattern_ops);

-- emails.email is up to 254 characters (the brief's 25 is too short). One address belongs to one
-- account: the event store decides that (a reservation stream per address), so the read table
-- only indexes it.
CREATE TABLE emails (
    id          bigint       PRIMARY KEY,
    user_id     bigint       NOT NULL,
    email       varchar(254) NOT NULL,
    "isPrimary" boolean      NOT NULL DEFAULT false,
    verified    boolean      NOT NULL DEFAULT false,
    version     bigint       NOT NULL,
    created_at  timestamp    NOT NULL DEFAULT now(),
    updated_at  timestamp    NOT NULL DEFAULT now()
);
CREATE INDEX emails_user_idx ON emails (user_id, id);
CREATE INDEX emails_email_idx ON emails (lower(email) text_pattern_ops);

CREATE TABLE phones_numbers (
    id            bigint      PRIMARY KEY,
    "phoneNumber" varchar(25),
    "isPrimary"   boolean     NOT NULL DEFAULT false,
    user_id       bigint      NOT NULL,
    version       bigint      NOT NULL,
    created_at    timestamp   NOT NULL DEFAULT now(),
    updated_at    timestamp   NOT NULL DEFAULT now()
);
CREATE INDEX phones_numbers_user_idx ON phones_numbers (user_id, id);

CREATE TABLE addresses (
    id          bigint       PRIMARY KEY,
    city        varchar(100) NOT NULL,
    "postCode"  varchar(20)  NOT NULL,
    country     varchar(20)  NOT NULL,
    "isPrimary" boolean      NOT NULL DEFAULT false,
    user_id     bigint       NOT NULL,
    order_id    bigint,
    version     bigint       NOT NULL,
    created_at  timestamp    NOT NULL DEFAULT now(),
    updated_at  timestamp    NOT NULL DEFAULT now()
);
CREATE INDEX addresses_user_idx ON addresses (user_id, id);

-- One image per user; id is the user's id (the brief's serial id has no other use).
CREATE TABLE user_image (
    id         bigint       PRIMARY KEY,
    url        varchar(255),
    image_id   varchar(255),
    user_id    bigint       NOT NULL UNIQUE,
    version    bigint       NOT NULL,
    created_at timestamp    NOT NULL DEFAULT now(),
    updated_at timestamp    NOT NULL DEFAULT now()
);

-- A notification's id is the position of the event it tells of, so a rebuild gives it the same id.
CREATE TABLE notifications (
    id         bigint    PRIMARY KEY,
    user_id    bigint    NOT NULL,
    kind       text      NOT NULL,
    read       boolean   NOT NULL DEFAULT false,
    message    text      NOT NULL,
    created_at timestamp NOT NULL DEFAULT now(),
    updated_at timestamp NOT NULL DEFAULT now()
);
CREATE INDEX notifications_user_idx ON notifications (user_id, read, id DESC);
