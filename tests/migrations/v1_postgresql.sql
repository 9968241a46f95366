CREATE TABLE public.api_token (
    id integer NOT NULL,
    name character varying(100) NOT NULL,
    token_hash character varying(64) NOT NULL,
    created_at timestamp without time zone NOT NULL,
    last_used_at timestamp without time zone
);
CREATE SEQUENCE public.api_token_id_seq
    AS integer
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;
ALTER SEQUENCE public.api_token_id_seq OWNED BY public.api_token.id;
CREATE TABLE public.click (
    click_id character varying(32) NOT NULL,
    flow_id integer NOT NULL,
    created_at timestamp without time zone NOT NULL,
    ip character varying(45) NOT NULL,
    visitor character varying(16) NOT NULL,
    user_agent text NOT NULL,
    referrer text NOT NULL,
    language character varying(35) NOT NULL,
    country character varying(2) NOT NULL,
    country_name character varying(100) NOT NULL,
    region character varying(100) NOT NULL,
    city character varying(100) NOT NULL,
    zip character varying(20) NOT NULL,
    isp character varying(200) NOT NULL,
    asn integer,
    carrier character varying(200) NOT NULL,
    connection_type character varying(30) NOT NULL,
    device_type character varying(10) NOT NULL,
    brand character varying(100) NOT NULL,
    model character varying(100) NOT NULL,
    os character varying(100) NOT NULL,
    os_version character varying(50) NOT NULL,
    browser character varying(100) NOT NULL,
    browser_version character varying(50) NOT NULL,
    is_bot boolean NOT NULL,
    is_unique boolean NOT NULL,
    external_id character varying(255) NOT NULL,
    sub1 character varying(255) NOT NULL,
    sub2 character varying(255) NOT NULL,
    sub3 character varying(255) NOT NULL,
    sub4 character varying(255) NOT NULL,
    sub5 character varying(255) NOT NULL,
    utm_source character varying(255) NOT NULL,
    utm_medium character varying(255) NOT NULL,
    utm_campaign character varying(255) NOT NULL,
    utm_term character varying(255) NOT NULL,
    utm_content character varying(255) NOT NULL,
    var1 character varying(255) NOT NULL,
    var2 character varying(255) NOT NULL,
    var3 character varying(255) NOT NULL,
    var4 character varying(255) NOT NULL,
    var5 character varying(255) NOT NULL,
    var6 character varying(255) NOT NULL,
    var7 character varying(255) NOT NULL,
    var8 character varying(255) NOT NULL,
    var9 character varying(255) NOT NULL,
    var10 character varying(255) NOT NULL,
    cost bigint NOT NULL,
    params text NOT NULL,
    cookies text NOT NULL,
    cut text NOT NULL
);
CREATE TABLE public.conversion (
    id integer NOT NULL,
    click_id character varying(32) NOT NULL,
    flow_id integer NOT NULL,
    event character varying(100) NOT NULL,
    payout bigint NOT NULL,
    currency character varying(3) NOT NULL,
    status character varying(10) NOT NULL,
    txid character varying(255) NOT NULL,
    dedup_key character varying(255) NOT NULL,
    data text NOT NULL,
    raw text NOT NULL,
    created_at timestamp without time zone NOT NULL,
    updated_at timestamp without time zone NOT NULL
);
CREATE TABLE public.conversion_change (
    id integer NOT NULL,
    conversion_id integer NOT NULL,
    at timestamp without time zone NOT NULL,
    status character varying(10) NOT NULL,
    payout bigint NOT NULL,
    inbound bigint
);
CREATE SEQUENCE public.conversion_change_id_seq
    AS integer
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;
ALTER SEQUENCE public.conversion_change_id_seq OWNED BY public.conversion_change.id;
CREATE SEQUENCE public.conversion_id_seq
    AS integer
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;
ALTER SEQUENCE public.conversion_id_seq OWNED BY public.conversion.id;
CREATE TABLE public.delivery (
    id integer NOT NULL,
    flow_id integer,
    click_id character varying(32),
    conversion_id bigint,
    postback_id integer,
    trigger character varying(16) NOT NULL,
    method character varying(8) NOT NULL,
    url text NOT NULL,
    headers text NOT NULL,
    body text NOT NULL,
    status character varying(10) NOT NULL,
    test boolean NOT NULL,
    attempts_count integer NOT NULL,
    next_attempt_at timestamp without time zone NOT NULL,
    lease_until timestamp without time zone,
    last_error text NOT NULL,
    created_at timestamp without time zone NOT NULL,
    updated_at timestamp without time zone NOT NULL
);
CREATE TABLE public.delivery_attempt (
    id integer NOT NULL,
    delivery_id integer NOT NULL,
    at timestamp without time zone NOT NULL,
    status_code integer,
    duration_ms real NOT NULL,
    error text NOT NULL,
    response text NOT NULL
);
CREATE SEQUENCE public.delivery_attempt_id_seq
    AS integer
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;
ALTER SEQUENCE public.delivery_attempt_id_seq OWNED BY public.delivery_attempt.id;
CREATE SEQUENCE public.delivery_id_seq
    AS integer
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;
ALTER SEQUENCE public.delivery_id_seq OWNED BY public.delivery.id;
CREATE TABLE public.flow (
    id integer NOT NULL,
    name character varying(200) NOT NULL,
    key character varying(32) NOT NULL,
    offer_url text NOT NULL,
    payout bigint NOT NULL,
    currency character varying(3) NOT NULL,
    attribution_days integer,
    fallback_url text NOT NULL,
    traffic_source_id integer,
    paused boolean NOT NULL,
    deleted boolean NOT NULL,
    created_at timestamp without time zone NOT NULL,
    updated_at timestamp without time zone NOT NULL
);
CREATE TABLE public.flow_event (
    id integer NOT NULL,
    flow_id integer NOT NULL,
    name character varying(100) NOT NULL,
    conversion boolean NOT NULL,
    allow_duplicates boolean NOT NULL
);
CREATE SEQUENCE public.flow_event_id_seq
    AS integer
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;
ALTER SEQUENCE public.flow_event_id_seq OWNED BY public.flow_event.id;
CREATE SEQUENCE public.flow_id_seq
    AS integer
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;
ALTER SEQUENCE public.flow_id_seq OWNED BY public.flow.id;
CREATE TABLE public.inbound_request (
    id integer NOT NULL,
    at timestamp without time zone NOT NULL,
    endpoint character varying(20) NOT NULL,
    ip character varying(45) NOT NULL,
    method character varying(10) NOT NULL,
    params text NOT NULL,
    http_status integer NOT NULL,
    accepted boolean NOT NULL,
    reason text NOT NULL,
    result character varying(20) NOT NULL,
    flow_id integer,
    click_id character varying(64) NOT NULL,
    conversion_id integer
);
CREATE SEQUENCE public.inbound_request_id_seq
    AS integer
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;
ALTER SEQUENCE public.inbound_request_id_seq OWNED BY public.inbound_request.id;
CREATE TABLE public.orphan_visit (
    id integer NOT NULL,
    created_at timestamp without time zone NOT NULL,
    key character varying(255) NOT NULL,
    reason character varying(50) NOT NULL,
    ip character varying(45) NOT NULL,
    user_agent text NOT NULL,
    referrer text NOT NULL,
    params text NOT NULL
);
CREATE SEQUENCE public.orphan_visit_id_seq
    AS integer
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;
ALTER SEQUENCE public.orphan_visit_id_seq OWNED BY public.orphan_visit.id;
CREATE TABLE public.postback (
    id integer NOT NULL,
    flow_id integer,
    traffic_source_id integer,
    name character varying(200) NOT NULL,
    trigger character varying(16) NOT NULL,
    url text NOT NULL,
    events text NOT NULL,
    statuses text NOT NULL,
    payout_type character varying(8) NOT NULL,
    enabled boolean NOT NULL,
    created_at timestamp without time zone NOT NULL
);
CREATE SEQUENCE public.postback_id_seq
    AS integer
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;
ALTER SEQUENCE public.postback_id_seq OWNED BY public.postback.id;
CREATE TABLE public.request_lock (
    key character varying(255) NOT NULL,
    expires_at timestamp without time zone NOT NULL
);
CREATE TABLE public.schema_version (
    id integer NOT NULL,
    version integer NOT NULL
);
CREATE SEQUENCE public.schema_version_id_seq
    AS integer
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;
ALTER SEQUENCE public.schema_version_id_seq OWNED BY public.schema_version.id;
CREATE TABLE public.setting (
    key character varying(100) NOT NULL,
    value text NOT NULL
);
CREATE TABLE public.traffic_source (
    id integer NOT NULL,
    name character varying(200) NOT NULL,
    click_id_param character varying(100) NOT NULL,
    vars text NOT NULL,
    postback_url text NOT NULL,
    postback_events text NOT NULL,
    active boolean NOT NULL,
    created_at timestamp without time zone NOT NULL,
    updated_at timestamp without time zone NOT NULL
);
CREATE SEQUENCE public.traffic_source_id_seq
    AS integer
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;
ALTER SEQUENCE public.traffic_source_id_seq OWNED BY public.traffic_source.id;
CREATE TABLE public."user" (
    id integer NOT NULL,
    username character varying(100) NOT NULL,
    password_hash character varying(255) NOT NULL,
    created_at timestamp without time zone NOT NULL
);
CREATE SEQUENCE public.user_id_seq
    AS integer
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;
ALTER SEQUENCE public.user_id_seq OWNED BY public."user".id;
ALTER TABLE ONLY public.api_token ALTER COLUMN id SET DEFAULT nextval('public.api_token_id_seq'::regclass);
ALTER TABLE ONLY public.conversion ALTER COLUMN id SET DEFAULT nextval('public.conversion_id_seq'::regclass);
ALTER TABLE ONLY public.conversion_change ALTER COLUMN id SET DEFAULT nextval('public.conversion_change_id_seq'::regclass);
ALTER TABLE ONLY public.delivery ALTER COLUMN id SET DEFAULT nextval('public.delivery_id_seq'::regclass);
ALTER TABLE ONLY public.delivery_attempt ALTER COLUMN id SET DEFAULT nextval('public.delivery_attempt_id_seq'::regclass);
ALTER TABLE ONLY public.flow ALTER COLUMN id SET DEFAULT nextval('public.flow_id_seq'::regclass);
ALTER TABLE ONLY public.flow_event ALTER COLUMN id SET DEFAULT nextval('public.flow_event_id_seq'::regclass);
ALTER TABLE ONLY public.inbound_request ALTER COLUMN id SET DEFAULT nextval('public.inbound_request_id_seq'::regclass);
ALTER TABLE ONLY public.orphan_visit ALTER COLUMN id SET DEFAULT nextval('public.orphan_visit_id_seq'::regclass);
ALTER TABLE ONLY public.postback ALTER COLUMN id SET DEFAULT nextval('public.postback_id_seq'::regclass);
ALTER TABLE ONLY public.schema_version ALTER COLUMN id SET DEFAULT nextval('public.schema_version_id_seq'::regclass);
ALTER TABLE ONLY public.traffic_source ALTER COLUMN id SET DEFAULT nextval('public.traffic_source_id_seq'::regclass);
ALTER TABLE ONLY public."user" ALTER COLUMN id SET DEFAULT nextval('public.user_id_seq'::regclass);
INSERT INTO public.api_token VALUES (1, 'ci', '0000000000000000000000000000000000000000000000000000000000000000', '2024-05-01 10:15:03', NULL);
INSERT INTO public.click VALUES ('0lvn2p8q0a1b2c3d4e5f6g7h8', 1, '2024-05-01 10:15:03', '203.0.113.7', '0123456789abcdef', 'Mozilla/5.0 (iPhone)', '', '', 'US', 'United States', '', 'Mountain View', '', '', NULL, '', '', 'mobile', '', '', 'iOS', '', 'Mobile Safari', '', false, true, 'ts-7781', 's1', '', '', '', '', 'push', '', '', '', '', 'zone 42', '', '', '', '', '', '', '', '', '', 350000, '{"subid":"ts-7781","zoneid":"zone 42","sub1":"s1"}', '{"_fbc":"fb.1.1714558503000.abc"}', '[]');
INSERT INTO public.conversion VALUES (1, '0lvn2p8q0a1b2c3d4e5f6g7h8', 1, 'lead', 12500000, 'USD', 'approved', 'TX-1', 'TX-1', '{"email":"jane@example.com","phone":"+1 650 555 1212"}', '{"click_id":"0lvn2p8q0a1b2c3d4e5f6g7h8","event":"lead","txid":"TX-1"}', '2024-05-01 11:15:03', '2024-05-01 11:15:03');
INSERT INTO public.conversion_change VALUES (1, 1, '2024-05-01 11:15:03', 'approved', 12500000, 1);
INSERT INTO public.delivery VALUES (1, 1, '0lvn2p8q0a1b2c3d4e5f6g7h8', 1, 1, 'conversion', 'GET', 'https://pb.example/?cid=0lvn2p8q0a1b2c3d4e5f6g7h8&p=12.50', '{}', '', 'delivered', false, 1, '2024-05-01 11:15:03', NULL, '', '2024-05-01 11:15:03', '2024-05-01 11:15:03');
INSERT INTO public.delivery_attempt VALUES (1, 1, '2024-05-01 11:15:03', 200, 12.5, '', 'ok');
INSERT INTO public.flow VALUES (1, 'Spring push', 'k3J9xQ0aBc', 'https://offer.example/lp?cid={clickid}', 12500000, 'USD', 30, '', 1, false, false, '2024-05-01 10:15:03', '2024-05-01 10:15:03');
INSERT INTO public.flow_event VALUES (1, 1, 'lead', true, false);
INSERT INTO public.flow_event VALUES (2, 1, 'sale', true, true);
INSERT INTO public.inbound_request VALUES (1, '2024-05-01 11:15:03', 'postback', '198.51.100.1', 'GET', '{"click_id":"0lvn2p8q0a1b2c3d4e5f6g7h8","event":"lead"}', 200, true, 'recorded', 'ok', 1, '0lvn2p8q0a1b2c3d4e5f6g7h8', 1);
INSERT INTO public.orphan_visit VALUES (1, '2024-05-01 10:15:03', 'nope', 'unknown', '203.0.113.8', '', '', '{"a":"1"}');
INSERT INTO public.postback VALUES (1, 1, NULL, '', 'conversion', 'https://pb.example/?cid={clickid}&p={payout}', '["lead"]', '[]', 'all', true, '2024-05-01 10:15:03');
INSERT INTO public.schema_version VALUES (1, 1);
INSERT INTO public.setting VALUES ('example', '1');
INSERT INTO public.traffic_source VALUES (1, 'PropellerAds', 'subid', '{"var1":"zoneid"}', 'https://source.example/pb?cid={externalid}&payout={payout}', '["lead"]', true, '2024-05-01 10:15:03', '2024-05-01 10:15:03');
INSERT INTO public."user" VALUES (1, 'admin', 'pbkdf2:sha256:600000$x$y', '2024-05-01 10:15:03');
SELECT pg_catalog.setval('public.api_token_id_seq', 1, true);
SELECT pg_catalog.setval('public.conversion_change_id_seq', 1, true);
SELECT pg_catalog.setval('public.conversion_id_seq', 1, true);
SELECT pg_catalog.setval('public.delivery_attempt_id_seq', 1, true);
SELECT pg_catalog.setval('public.delivery_id_seq', 1, true);
SELECT pg_catalog.setval('public.flow_event_id_seq', 2, true);
SELECT pg_catalog.setval('public.flow_id_seq', 1, true);
SELECT pg_catalog.setval('public.inbound_request_id_seq', 1, true);
SELECT pg_catalog.setval('public.orphan_visit_id_seq', 1, true);
SELECT pg_catalog.setval('public.postback_id_seq', 1, true);
SELECT pg_catalog.setval('public.schema_version_id_seq', 1, true);
SELECT pg_catalog.setval('public.traffic_source_id_seq', 1, true);
SELECT pg_catalog.setval('public.user_id_seq', 1, true);
ALTER TABLE ONLY public.api_token
    ADD CONSTRAINT api_token_pkey PRIMARY KEY (id);
ALTER TABLE ONLY public.click
    ADD CONSTRAINT click_pkey PRIMARY KEY (click_id);
ALTER TABLE ONLY public.conversion_change
    ADD CONSTRAINT conversion_change_pkey PRIMARY KEY (id);
ALTER TABLE ONLY public.conversion
    ADD CONSTRAINT conversion_pkey PRIMARY KEY (id);
ALTER TABLE ONLY public.delivery_attempt
    ADD CONSTRAINT delivery_attempt_pkey PRIMARY KEY (id);
ALTER TABLE ONLY public.delivery
    ADD CONSTRAINT delivery_pkey PRIMARY KEY (id);
ALTER TABLE ONLY public.flow_event
    ADD CONSTRAINT flow_event_pkey PRIMARY KEY (id);
ALTER TABLE ONLY public.flow
    ADD CONSTRAINT flow_pkey PRIMARY KEY (id);
ALTER TABLE ONLY public.inbound_request
    ADD CONSTRAINT inbound_request_pkey PRIMARY KEY (id);
ALTER TABLE ONLY public.orphan_visit
    ADD CONSTRAINT orphan_visit_pkey PRIMARY KEY (id);
ALTER TABLE ONLY public.postback
    ADD CONSTRAINT postback_pkey PRIMARY KEY (id);
ALTER TABLE ONLY public.request_lock
    ADD CONSTRAINT request_lock_pkey PRIMARY KEY (key);
ALTER TABLE ONLY public.schema_version
    ADD CONSTRAINT schema_version_pkey PRIMARY KEY (id);
ALTER TABLE ONLY public.setting
    ADD CONSTRAINT setting_pkey PRIMARY KEY (key);
ALTER TABLE ONLY public.traffic_source
    ADD CONSTRAINT traffic_source_pkey PRIMARY KEY (id);
ALTER TABLE ONLY public."user"
    ADD CONSTRAINT user_pkey PRIMARY KEY (id);
CREATE UNIQUE INDEX api_token_token_hash ON public.api_token USING btree (token_hash);
CREATE INDEX click_flow_id ON public.click USING btree (flow_id);
CREATE INDEX click_flow_id_created_at ON public.click USING btree (flow_id, created_at);
CREATE INDEX click_flow_id_visitor_created_at ON public.click USING btree (flow_id, visitor, created_at);
CREATE INDEX conversion_change_conversion_id ON public.conversion_change USING btree (conversion_id);
CREATE INDEX conversion_click_id ON public.conversion USING btree (click_id);
CREATE UNIQUE INDEX conversion_click_id_event_dedup_key ON public.conversion USING btree (click_id, event, dedup_key);
CREATE INDEX conversion_flow_id ON public.conversion USING btree (flow_id);
CREATE INDEX conversion_flow_id_created_at ON public.conversion USING btree (flow_id, created_at);
CREATE INDEX delivery_attempt_delivery_id ON public.delivery_attempt USING btree (delivery_id);
CREATE INDEX delivery_click_id ON public.delivery USING btree (click_id);
CREATE INDEX delivery_conversion_id ON public.delivery USING btree (conversion_id);
CREATE INDEX delivery_flow_id_created_at ON public.delivery USING btree (flow_id, created_at);
CREATE INDEX delivery_postback_id ON public.delivery USING btree (postback_id);
CREATE INDEX delivery_status_next_attempt_at ON public.delivery USING btree (status, next_attempt_at);
CREATE INDEX flow_event_flow_id ON public.flow_event USING btree (flow_id);
CREATE UNIQUE INDEX flow_event_flow_id_name ON public.flow_event USING btree (flow_id, name);
CREATE UNIQUE INDEX flow_key ON public.flow USING btree (key);
CREATE INDEX flow_traffic_source_id ON public.flow USING btree (traffic_source_id);
CREATE INDEX inbound_request_at ON public.inbound_request USING btree (at);
CREATE INDEX inbound_request_conversion_id ON public.inbound_request USING btree (conversion_id);
CREATE INDEX inbound_request_flow_id_at ON public.inbound_request USING btree (flow_id, at);
CREATE INDEX orphan_visit_created_at ON public.orphan_visit USING btree (created_at);
CREATE INDEX postback_flow_id ON public.postback USING btree (flow_id);
CREATE INDEX postback_traffic_source_id ON public.postback USING btree (traffic_source_id);
CREATE UNIQUE INDEX user_username ON public."user" USING btree (username);
ALTER TABLE ONLY public.click
    ADD CONSTRAINT click_flow_id_fkey FOREIGN KEY (flow_id) REFERENCES public.flow(id) ON DELETE CASCADE;
ALTER TABLE ONLY public.conversion_change
    ADD CONSTRAINT conversion_change_conversion_id_fkey FOREIGN KEY (conversion_id) REFERENCES public.conversion(id) ON DELETE CASCADE;
ALTER TABLE ONLY public.conversion
    ADD CONSTRAINT conversion_click_id_fkey FOREIGN KEY (click_id) REFERENCES public.click(click_id) ON DELETE CASCADE;
ALTER TABLE ONLY public.conversion
    ADD CONSTRAINT conversion_flow_id_fkey FOREIGN KEY (flow_id) REFERENCES public.flow(id) ON DELETE CASCADE;
ALTER TABLE ONLY public.delivery_attempt
    ADD CONSTRAINT delivery_attempt_delivery_id_fkey FOREIGN KEY (delivery_id) REFERENCES public.delivery(id) ON DELETE CASCADE;
ALTER TABLE ONLY public.delivery
    ADD CONSTRAINT delivery_postback_id_fkey FOREIGN KEY (postback_id) REFERENCES public.postback(id) ON DELETE SET NULL;
ALTER TABLE ONLY public.flow_event
    ADD CONSTRAINT flow_event_flow_id_fkey FOREIGN KEY (flow_id) REFERENCES public.flow(id) ON DELETE CASCADE;
ALTER TABLE ONLY public.flow
    ADD CONSTRAINT flow_traffic_source_id_fkey FOREIGN KEY (traffic_source_id) REFERENCES public.traffic_source(id) ON DELETE SET NULL;
ALTER TABLE ONLY public.inbound_request
    ADD CONSTRAINT inbound_request_conversion_id_fkey FOREIGN KEY (conversion_id) REFERENCES public.conversion(id) ON DELETE SET NULL;
ALTER TABLE ONLY public.postback
    ADD CONSTRAINT postback_flow_id_fkey FOREIGN KEY (flow_id) REFERENCES public.flow(id) ON DELETE CASCADE;
ALTER TABLE ONLY public.postback
    ADD CONSTRAINT postback_traffic_source_id_fkey FOREIGN KEY (traffic_source_id) REFERENCES public.traffic_source(id) ON DELETE CASCADE;
