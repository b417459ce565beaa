# Health check of the production image: exits 0 when the app answers
# GET /version with 200 on $PORT. Standard library only.
require "http/client"

port = ENV.fetch("PORT", "5000")
uri = URI.parse("http://127.0.0.1:#{port}/version")
client = HTTP::Client.new(uri)
client.connect_timeout = 2.seconds
client.read_timeout = 2.seconds

begin
  response = client.get(uri.request_target)
  if response.status_code == 200
    exit 0
  end
  STDERR.puts "healthcheck: #{uri} answered #{response.status_code}"
rescue error
  STDERR.puts "healthcheck: #{uri}: #{error.message}"
end
exit 1
