/**
 * Input validation: every bad input is rejected here, before anything is written, with a
 * message naming the field and the fix.
 */
import { parsePhoneNumberWithError, ParseError } from 'libphonenumber-js/max';
import { CHECK_NAMES, type CheckName, type CodeMethod } from '../../machines/types.js';
import { ID_PATTERN } from '../store/store.js';

export class InputError extends Error {
  override readonly name = 'InputError';
  constructor(
    readonly field: string,
    message: string,
  ) {
    super(`${field}: ${message}`);
  }
}

export interface ParsedPhone {
  e164: string;
  cc: string;
  nationalNumber: string;
}

/** E.164 → country calling code + national number, via libphonenumber-js (full metadata). */
export function parsePhone(raw: unknown, field = 'phone'): ParsedPhone {
  if (typeof raw !== 'string' || raw.trim() === '') throw new InputError(field, 'is required: give the number in E.164 form, e.g. +16315551000');
  const s = raw.trim();
  if (!s.startsWith('+')) throw new InputError(field, `"${s}" has no country code: write it in E.164 form starting with + and the country code, e.g. +16315551000`);
  if (/[^\d+\s().-]/.test(s)) throw new InputError(field, `"${s}" contains characters that are not digits: use E.164, e.g. +16315551000`);
  let parsed;
  try {
    parsed = parsePhoneNumberWithError(s);
  } catch (e) {
    const why = e instanceof ParseError ? e.message.toLowerCase().replace(/_/g, ' ') : String(e);
    throw new InputError(field, `"${s}" is not a phone number (${why}): use E.164, e.g. +16315551000`);
  }
  if (!parsed.isValid())
    throw new InputError(field, `"${s}" is not a valid number for ${parsed.country ?? `country code +${parsed.countryCallingCode}`}: check the digits`);
  return { e164: parsed.number, cc: parsed.countryCallingCode, nationalNumber: parsed.nationalNumber };
}

export function parseGraphId(raw: unknown, field: string): string {
  if (typeof raw !== 'string' || !/^\d{1,32}$/.test(raw.trim()))
    throw new InputError(field, `${JSON.stringify(raw ?? '')} is not a Graph ID: it must be digits only, as shown in WhatsApp Manager or Business settings`);
  return raw.trim();
}

export function parseCode(raw: unknown, field = 'code'): string {
  // WhatsApp shows codes as "123-456" or "123 456": accept them as shown.
  const digits = typeof raw === 'string' ? raw.trim().replace(/^(\d{3})[\s-](\d{3})$/, '$1$2') : raw;
  if (typeof digits !== 'string' || !/^\d{6}$/.test(digits))
    throw new InputError(field, 'must be the 6 digits Meta sent by SMS or voice call (e.g. 123456 or 123-456)');
  return digits;
}

export function parsePin(raw: unknown, field = 'pin'): string {
  if (typeof raw !== 'string' || !/^\d{6}$/.test(raw.trim()))
    throw new InputError(field, 'the register PIN must be exactly 6 digits (it becomes the number’s two-step verification PIN)');
  return raw.trim();
}

export function parseCodeMethod(raw: unknown, field = 'code-method'): CodeMethod {
  const s = typeof raw === 'string' ? raw.trim().toUpperCase() : '';
  if (s === 'SMS' || s === 'VOICE') return s;
  throw new InputError(field, `${JSON.stringify(raw)} is not a code method: use sms or voice`);
}

/** Meta's spec wants ll_CC (en_US); the migration guide also shows a bare ll (en). Both accepted. */
export function parseLanguage(raw: unknown, field = 'language'): string {
  if (typeof raw !== 'string' || !/^[a-z]{2,3}(_[A-Z]{2})?$/.test(raw.trim()))
    throw new InputError(field, `${JSON.stringify(raw)} is not a language code: use e.g. en_US or en`);
  return raw.trim();
}

export function parseCheckName(raw: unknown, field = 'confirm'): CheckName {
  if (typeof raw === 'string' && (CHECK_NAMES as readonly string[]).includes(raw)) return raw as CheckName;
  throw new InputError(field, `${JSON.stringify(raw)} is not a check: use one of ${CHECK_NAMES.join(', ')}`);
}

export function parseMigrationId(raw: unknown, field = 'id'): string {
  if (typeof raw !== 'string' || !ID_PATTERN.test(raw))
    throw new InputError(field, `${JSON.stringify(raw)} is not a migration id: use 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit`);
  return raw;
}

export function parseVerifiedName(raw: unknown, field = 'verified-name'): string | null {
  if (raw === undefined || raw === null || raw === '') return null;
  if (typeof raw !== 'string' || raw.trim().length < 2 || raw.trim().length > 75)
    throw new InputError(field, 'must be 2 to 75 characters (the display name Meta approved)');
  return raw.trim();
}
