-- Names do not travel beyond enrollment (docs/architecture.md, "Personal data"): the audit keeps an
-- enrollment command about a person without the person's name (services/audit/handlers.py,
-- `payload_dict`). What was stored before loses it here, the one change ever made to stored events.
ALTER TABLE event_store DISABLE TRIGGER event_store_append_only;
UPDATE event_store SET payload = payload - 'name'
WHERE topic = 'enrollment.commands' AND event_type <> 'RegisterProvider' AND payload ? 'name';
UPDATE event_store
SET payload = jsonb_build_object('invalid_payload', '(not kept: an enrollment command may carry a person''s name)',
                                 'length', payload->'length')
WHERE topic = 'enrollment.commands' AND event_type <> 'RegisterProvider' AND payload ? 'invalid_payload';
ALTER TABLE event_store ENABLE TRIGGER event_store_append_only;
