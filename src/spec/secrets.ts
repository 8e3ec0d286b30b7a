import { readFile } from 'node:fs/promises';
import { isAbsolute, resolve } from 'node:path';
import { SecretError } from '../errors.js';
import type { SecretRef } from './schema.js';
import { invalidUtf8 } from './utf8.js';

/** Where a secret came from, for messages: never its value. */
export function describeSecret(ref: SecretRef): string {
  return 'env' in ref ? `environment variable ${ref.env}` : `file ${ref.file}`;
}

/**
 * Reads a secret. A file secret is read relative to `baseDir` (the spec's folder) and its trailing
 * newline dropped, as Docker and Kubernetes secrets are written.
 * @throws SecretError saying which reference is missing and who needs it.
 */
export async function resolveSecret(ref: SecretRef, baseDir: string, usedFor: string): Promise<string> {
  if ('env' in ref) {
    const value = process.env[ref.env];
    if (value === undefined || value === '') throw new SecretError(`${usedFor}: environment variable ${ref.env} is not set`);
    return value;
  }
  const path = isAbsolute(ref.file) ? ref.file : resolve(baseDir, ref.file);
  let bytes: Buffer;
  try {
    bytes = await readFile(path);
  } catch (error) {
    throw new SecretError(`${usedFor}: cannot read secret file ${path} (${(error as NodeJS.ErrnoException).code ?? 'error'})`);
  }
  // Decoding would replace such bytes, and a password nobody set would be used.
  if (invalidUtf8(bytes).length > 0) throw new SecretError(`${usedFor}: secret file ${path} holds bytes that are not UTF-8`);
  const value = bytes.toString('utf8').replace(/\r?\n$/, '');
  if (value === '') throw new SecretError(`${usedFor}: secret file ${path} is empty`);
  return value;
}
