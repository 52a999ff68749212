const test = require('node:test');
const assert = require('node:assert');
const fs = require('node:fs');
const { formatDate } = require('./dates');
const { header } = require('./report');

test('param', () => {
  assert.strictEqual(formatDate.length, 1);  // the new parameter has a default
  assert.ok(/function formatDate\(date, locale = 'en'\)/.test(fs.readFileSync('dates.js', 'utf8')));
  assert.ok(fs.readFileSync('report.js', 'utf8').includes("formatDate(date, 'de')"));
  assert.strictEqual(header(new Date('2024-01-02T00:00:00Z')), 'Report of 2024-01-02');
});
