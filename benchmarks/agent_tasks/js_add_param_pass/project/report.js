const { formatDate } = require('./dates');

function header(date) {
  return 'Report of ' + formatDate(date);
}

module.exports = { header };
