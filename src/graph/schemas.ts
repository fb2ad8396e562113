/**
 * zod schemas for every Graph response this tool reads, after Meta's OpenAPI description
 * (`shared/reference/meta-business-messaging-api_v23.0.yaml`). Objects are `loose` because Meta
 * adds fields over time; only what we rely on is required. Where the spec and Meta's prose
 * disagree, see docs/spec-divergences.md.
 */
import { z } from 'zod';

/** `GraphAPIError` in the spec. */
export const GraphErrorBody = z.object({
  error: z.looseObject({
    message: z.string(),
    type: z.string().optional(),
    code: z.number().int(),
    error_subcode: z.number().int().optional(),
    fbtrace_id: z.string().optional(),
    is_transient: z.boolean().optional(),
    error_user_title: z.string().optional(),
    error_user_msg: z.string().optional(),
  }),
});

/** `RequestCodeResponse`, `VerifyCodeResponse`, `WhatsAppBusinessPhoneNumberRegistrationResponse`. */
export const SuccessResponse = z.looseObject({ success: z.literal(true) });

/** `PhoneNumberCreateResponse`. */
export const CreatedResponse = z.looseObject({ id: z.string().min(1) });

export const CursorPaging = z.looseObject({
  cursors: z.looseObject({ before: z.string().optional(), after: z.string().optional() }).optional(),
  next: z.string().optional(),
  previous: z.string().optional(),
});

/** `WhatsAppBusinessAccountPhoneNumber` / `PhoneNumberInfo`. `status` is a string: Meta's prose
 *  documents `CONNECTED`, which the spec's enum lacks (see docs/spec-divergences.md). */
export const PhoneNumber = z.looseObject({
  id: z.string().min(1),
  display_phone_number: z.string().optional(),
  verified_name: z.string().optional(),
  status: z.string().optional(),
  code_verification_status: z.string().optional(),
  quality_rating: z.string().optional(),
  platform_type: z.string().optional(),
  /** The spec's name for platform_type (same values); read when Meta answers with it. */
  host_platform: z.string().optional(),
});
export type PhoneNumber = z.infer<typeof PhoneNumber>;

export const PhoneNumbersPage = z.looseObject({ data: z.array(PhoneNumber), paging: CursorPaging.optional() });

export const WabaInfo = z.looseObject({
  id: z.string().min(1),
  name: z.string().optional(),
  account_review_status: z.string().optional(),
  primary_funding_id: z.string().nullable().optional(),
  owner_business_info: z.looseObject({ id: z.string(), name: z.string().optional() }).optional(),
});
export type WabaInfo = z.infer<typeof WabaInfo>;

export const WabasPage = z.looseObject({
  data: z.array(z.looseObject({ id: z.string().min(1) })),
  paging: CursorPaging.optional(),
});

export const BusinessInfo = z.looseObject({
  id: z.string().min(1),
  name: z.string().optional(),
  verification_status: z.string().optional(),
});
export type BusinessInfo = z.infer<typeof BusinessInfo>;

/** `SubscribedAppsResponse`: entries may be `{id,name}` or `{whatsapp_business_api_data:{...}}`. */
export const SubscribedAppsPage = z.looseObject({ data: z.array(z.looseObject({})), paging: CursorPaging.optional() });

/** `GET /{phone-number-id}?fields=webhook_configuration`: the URL in force at each level. */
export const WebhookConfigurationView = z.looseObject({
  webhook_configuration: z.looseObject({ phone_number: z.string().optional(), whatsapp_business_account: z.string().optional(), application: z.string().optional() }).optional(),
});
export const PermissionsPage = z.looseObject({ data: z.array(z.looseObject({ permission: z.string(), status: z.string() })) });
export type PermissionsPage = z.infer<typeof PermissionsPage>;
