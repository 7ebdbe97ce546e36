import { request as httpRequest } from 'node:http';

export interface RawAnswer {
  readonly status: number;
  readonly body: string;
}

/** A request with its target sent exactly as written (fetch would resolve `..` and `%2e` first). */
export function rawRequest(
  port: number,
  method: string,
  target: string,
  headers: Readonly<Record<string, string>>,
  body?: string,
): Promise<RawAnswer> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      { host: '127.0.0.1', port, method, path: target, headers, agent: false },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => {
          text += chunk;
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

/** Every spelling of VictoriaMetrics' and Prometheus' delete_series an attacker could try. */
export const DELETE_SPELLINGS: readonly string[] = [
  '/api/v1/admin/tsdb/delete_series',
  '/api/v1/%61dmin/tsdb/delete_series',
  '/api/v1/%41dmin/tsdb/delete_series',
  '//api/v1/admin/tsdb/delete_series',
  '///api//v1//admin/tsdb/delete_series',
  '/./api/v1/admin/tsdb/delete_series',
  '/api/v1/./admin/tsdb/delete_series',
  '/api/v1/query/../admin/tsdb/delete_series',
  '/api/v1/query/%2e%2e/admin/tsdb/delete_series',
  '/api/v1/query/.%2E/admin/tsdb/delete_series',
  '/api/v1/query%2F..%2Fadmin/tsdb/delete_series',
  '/api/v1/query%2f%2e%2e%2fadmin%2ftsdb%2fdelete_series',
  '/api/v1/query%5C..%5Cadmin/tsdb/delete_series',
  '/api/v1/query\\..\\admin/tsdb/delete_series',
  '/api/v1/admin%2Ftsdb%2Fdelete_series',
  '/api/v1/admin/tsdb/delete_series/',
  '/prometheus/api/v1/admin/tsdb/delete_series',
  '/prometheus//api/v1/admin/tsdb/delete_series',
  '/api/v1/labels/../admin/tsdb/delete_series',
  '/api/v1/import/../admin/tsdb/delete_series',
  '/api/v1/write/%2e%2e/admin/tsdb/delete_series',
];
